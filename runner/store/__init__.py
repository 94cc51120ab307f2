"""Durable state: one SQLite database per state directory, holding runs, their traces and the
memo. ``db`` opens and migrates it, ``writer`` commits through a process of its own, ``runs``,
``memo`` and ``trace`` read and write their tables."""
