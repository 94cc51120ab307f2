"""Durable state: one SQLite database per state directory, holding runs, their traces and the
memo. ``db`` opens and migrates it, ``writer`` commits from a background thread, ``runs``,
``memo`` and ``trace`` read and write their tables."""
