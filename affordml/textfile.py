"""Read a small text file the user points at, safely: only a regular file (a FIFO or /dev/zero must not hang
or fill memory), at most a size limit, as UTF-8. Each failure is its own exception so callers word the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class NotRegularFile(OSError):
    """A FIFO, a device, a folder: not a file affordml reads."""


class TooLarge(OSError):
    """Bigger than the limit for this kind of file."""


def read_text(path: Path, limit: int) -> str:
    """The file's text. Raises FileNotFoundError, NotRegularFile, TooLarge, OSError, UnicodeDecodeError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(f"{path} is not a regular file")
        if info.st_size > limit:
            raise TooLarge(f"{path} is larger than {limit // 1024**2} MiB")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # grew while we read
                raise TooLarge(f"{path} is larger than {limit // 1024**2} MiB")
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8")
