"""Reading a file a user named: only regular files, never a wait on a pipe or a device.

A workflow, a mock script, a configuration or a trace named on the command line can be anything
the path points at. Opening a FIFO for reading blocks until a writer comes, and reading a device
such as ``/dev/zero`` never ends, so a pre-commit hook or a CI step given one would hang. Every
loader reads through :func:`open_user_file`, which refuses whatever is not a regular file before
reading a byte, and :func:`read_user_text`, which also says where a file is not UTF-8.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "is a folder, not a file"),
    (stat.S_ISFIFO, "is a named pipe (FIFO), not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


class UnreadableFile(Exception):
    """A file that cannot be read as the user meant; ``reason`` completes "the file ..."."""

    def __init__(
        self, path: str, reason: str, *, line: int | None = None, col: int | None = None
    ) -> None:
        self.path = path
        self.reason = reason
        self.line = line
        """1-based line of the first byte that is not UTF-8, when that is the reason."""
        self.col = col
        """1-based column (in bytes) of that byte."""
        where = f" (line {line}, column {col})" if line is not None else ""
        super().__init__(f"{path} {reason}{where}")


def _refuse_irregular(path: str, mode: int) -> None:
    for test, reason in _KINDS:
        if test(mode):
            raise UnreadableFile(path, reason)
    if not stat.S_ISREG(mode):
        raise UnreadableFile(path, "is not a regular file")


def not_readable(path: str) -> str | None:
    """Why ``path`` cannot be read as a file (completing "the path ..."), or ``None`` when it
    is a regular file. Nothing is opened."""
    try:
        _refuse_irregular(path, os.stat(path).st_mode)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    except UnreadableFile as exc:
        return exc.reason
    return None


def open_user_file(path: str) -> BinaryIO:
    """``path`` opened for reading in binary; UnreadableFile when it is not a regular file or
    cannot be opened."""
    try:
        _refuse_irregular(path, os.stat(path).st_mode)
        # O_NONBLOCK: should the path become a FIFO between the stat and the open, the open
        # returns at once instead of waiting for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError as exc:
        raise UnreadableFile(path, "does not exist") from exc
    except NotADirectoryError as exc:
        raise UnreadableFile(path, "does not exist (a part of the path is a file)") from exc
    except PermissionError as exc:
        raise UnreadableFile(path, "cannot be read: permission denied") from exc
    except OSError as exc:
        raise UnreadableFile(path, f"cannot be read: {exc.strerror or exc}") from exc
    try:
        _refuse_irregular(path, os.fstat(fd).st_mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_user_bytes(path: str, *, max_bytes: int | None = None) -> bytes:
    """The whole content of a regular file; UnreadableFile otherwise, or past ``max_bytes``."""
    with open_user_file(path) as handle:
        try:
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
        except OSError as exc:
            raise UnreadableFile(path, f"cannot be read: {exc.strerror or exc}") from exc
    if max_bytes is not None and len(data) > max_bytes:
        raise UnreadableFile(path, f"is larger than {max_bytes} bytes")
    return data


def read_user_text(path: str, *, max_bytes: int | None = None) -> str:
    """The content of a regular UTF-8 file as text (a leading byte-order mark dropped);
    UnreadableFile saying where it is not UTF-8."""
    data = read_user_bytes(path, max_bytes=max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UnreadableFile(
            path,
            f"is not UTF-8 text: it has the byte 0x{data[exc.start]:02x}; save it as UTF-8",
            line=line,
            col=col,
        ) from exc
