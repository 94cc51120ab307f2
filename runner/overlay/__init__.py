"""The overlay branch (``cached-main``): promoted lessons, one file each, written with git plumbing.

This package is the only place that writes refs. ``branch`` holds :class:`Overlay` (read the
lessons straight from the branch's tree, promote, demote, revert, push), ``files`` the lesson
file's envelope (pure), ``git`` the plumbing calls. Errors: ``OverlayError`` (a RunnerError,
exit 2) for what a user can fix, ``GitFailed`` (exit 3) for a repository git itself refuses.
"""
