"""Files affordml writes in the project folder: never through a symbolic link, never into a second name (hard
link) of a file elsewhere, never with a moment of wider permissions, whatever the caller's umask.

Folders are opened one component at a time from the project root with O_DIRECTORY|O_NOFOLLOW; files are written
to a fresh temporary name (O_CREAT|O_EXCL|O_NOFOLLOW) inside their folder, fchmod-ed, fsync-ed, then renamed over
the target. A file affordml reads back (secrets, state, its lock) is opened with O_NOFOLLOW and must be a regular
file with one link, owned by the user running affordml.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from affordml.errors import MissingFile, UnsafeFile

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
MAX_READ = 16 * 1024 * 1024  # affordml's own files are small; a bigger one is not ours


def check_root(root: Path, create: bool = False) -> Path:
    """The project folder, checked (and created 0700 when asked): not a link, a folder, ours, closed to others."""
    fd = open_root(root, create)
    os.close(fd)
    return root


def refuse_link_or_file(root: Path) -> None:
    """A project folder that exists must be a real folder (not a link to one, not a file)."""
    try:
        info = os.lstat(root)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _os_error(root, exc) from None
    if stat.S_ISLNK(info.st_mode):
        raise _root_error(root, OSError(errno.ELOOP, "link"))
    if not stat.S_ISDIR(info.st_mode):
        raise _root_error(root, OSError(errno.ENOTDIR, "file"))


def open_root(root: Path, create: bool = False) -> int:
    """An fd of the project folder. A missing folder is created (its parents with the usual modes) when asked."""
    if create:
        _make_root(root)
    try:
        fd = os.open(root, DIR_FLAGS)
    except OSError as exc:
        raise _root_error(root, exc) from None
    try:
        _check_folder(fd, root, root_of_project=True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_root(root: Path) -> None:
    if os.path.lexists(root):
        return
    try:
        _make_parents(root.parent)
        os.mkdir(root, PRIVATE_DIR)
    except FileExistsError:
        return
    except OSError as exc:
        raise _root_error(root, exc) from None
    fd = os.open(root, DIR_FLAGS)
    try:
        os.fchmod(fd, PRIVATE_DIR)
    finally:
        os.close(fd)


def _make_parents(folder: Path) -> None:
    """Missing folders above the project: 0755 whatever the umask (never open to others' writes)."""
    missing = []
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            continue
        fd = os.open(path, DIR_FLAGS)
        try:
            os.fchmod(fd, 0o755)
        finally:
            os.close(fd)


def _root_error(root: Path, exc: OSError) -> UnsafeFile:
    if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and os.path.islink(root)):
        return UnsafeFile(
            f"the project folder {root} is a symbolic link; affordml works only in a real folder",
            f"pass the folder itself: -p {os.path.realpath(root)}",
        )
    if exc.errno == errno.ENOTDIR:
        return UnsafeFile(f"the project folder {root} is a file, not a folder", "pass a folder with -p")
    if exc.errno == errno.ENOENT:
        return MissingFile(f"the project folder {root} does not exist", "run `affordml init` or `affordml config init`")
    return _os_error(root, exc)


def _os_error(path: Path, exc: OSError) -> UnsafeFile:
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        where = "is on a read-only file system" if exc.errno == errno.EROFS else "cannot be written"
        return UnsafeFile(
            f"{path} {where} ({exc.strerror})",
            "choose a writable project folder with -p, or give yourself write access to it",
        )
    if exc.errno == errno.ENOSPC:
        return UnsafeFile(f"no space left to write {path}", "free some disk space, then run again")
    return UnsafeFile(f"{path} cannot be written ({exc.strerror})", "check the folder and its permissions")


def _check_folder(fd: int, path: Path, root_of_project: bool = False) -> None:
    info = os.fstat(fd)
    if info.st_uid != os.geteuid():
        raise UnsafeFile(
            f"{path} belongs to uid {info.st_uid}, not to you (uid {os.geteuid()}); affordml does not take it over",
            f"use a folder of your own with -p, or `chown {os.geteuid()} {path}`",
        )
    if info.st_mode & 0o022:
        who = "the project folder" if root_of_project else "folder"
        raise UnsafeFile(
            f"{who} {path} is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})",
            f"`chmod 700 {path}`",
        )


@contextmanager
def folder(root: Path, rel: str | Path = "", create: bool = False, mode: int = PRIVATE_DIR) -> Iterator[int]:
    """An fd of root/rel, walked from root without following a link; missing folders made with `mode`."""
    fd = open_root(root, create)
    try:
        current = root
        for part in Path(rel).parts:
            if part in ("..", "/"):
                raise ValueError(f"not a relative folder: {rel}")
            current = current / part
            fd = _swap(fd, _subfolder(fd, part, current, create, mode))
        yield fd
    finally:
        os.close(fd)


def _swap(old: int, new: int) -> int:
    os.close(old)
    return new


def _subfolder(parent: int, name: str, path: Path, create: bool, mode: int) -> int:
    made = False
    if create:
        try:
            os.mkdir(name, mode, dir_fd=parent)
            made = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise _os_error(path, exc) from None
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            kind = "a symbolic link" if exc.errno == errno.ELOOP or _is_link(parent, name) else "not a folder"
            raise UnsafeFile(
                f"{path} is {kind}; affordml keeps its files only in its own folders",
                f"move it aside (`mv {path} {path}.moved`), then run again",
            ) from None
        if exc.errno == errno.ENOENT:
            raise MissingFile(f"{path} does not exist", "run `affordml init` first") from None
        raise _os_error(path, exc) from None
    try:
        if made:
            os.fchmod(fd, mode)
        _check_folder(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(parent: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


def ensure_folder(root: Path, rel: str | Path, mode: int = PRIVATE_DIR) -> Path:
    """Make root/rel (and root) if missing, safely; the folder's path."""
    with folder(root, rel, create=True, mode=mode):
        pass
    return root / rel


def check_own_file(fd: int, path: Path) -> os.stat_result:
    """A file affordml made: regular, one link, owned by the user running affordml."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{path} is not a regular file", f"move it aside (`mv {path} {path}.moved`), then run again")
    if info.st_nlink != 1:
        raise UnsafeFile(
            f"{path} has {info.st_nlink} hard links: it may be a second name of a file elsewhere, so affordml "
            "will not write it",
            f"make it a file of its own (`cp {path} {path}.copy && mv {path}.copy {path}`), then run again",
        )
    if info.st_uid != os.geteuid():
        raise UnsafeFile(
            f"{path} belongs to uid {info.st_uid}, not to you (uid {os.geteuid()})",
            f"move it aside (`mv {path} {path}.moved`), then run again",
        )
    return info


def _open_own(parent: int, name: str, path: Path, flags: int, mode: int = PRIVATE_FILE) -> int | None:
    """Open parent/name without following a link, checked by check_own_file; None when it does not exist."""
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFile(
                f"{path} is a symbolic link; affordml does not read or write its files through links",
                f"remove the link (`rm {path}`), then run again",
            ) from None
        if exc.errno == errno.EISDIR:
            raise UnsafeFile(
                f"{path} is a folder, not a file", f"move it aside (`mv {path} {path}.moved`), then run again"
            ) from None
        if exc.errno == errno.ENXIO:  # a FIFO or socket with nobody on the other end
            raise UnsafeFile(f"{path} is not a regular file", f"remove it (`rm {path}`), then run again") from None
        raise _os_error(path, exc) from None
    try:
        check_own_file(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_text(root: Path, rel: str | Path) -> str | None:
    """The text of affordml's own file root/rel, or None when it does not exist (or its folder does not)."""
    rel = Path(rel)
    try:
        with folder(root, rel.parent) as parent:
            fd = _open_own(parent, rel.name, root / rel, os.O_RDONLY | os.O_NONBLOCK)
            if fd is None:
                return None
            with os.fdopen(fd, "rb") as handle:
                data = handle.read(MAX_READ + 1)
    except MissingFile:
        return None
    if len(data) > MAX_READ:
        raise UnsafeFile(f"{root / rel} is larger than {MAX_READ} bytes: not a file affordml wrote", "move it aside")
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise UnsafeFile(
            f"{root / rel} is not UTF-8 text: not a file affordml wrote",
            f"move it aside (`mv {root / rel} {root / rel}.broken`), then run again",
        ) from None


def write_text(root: Path, rel: str | Path, text: str, mode: int = PRIVATE_FILE, replace_links: bool = False) -> Path:
    """Create or replace root/rel: temp file beside it, fchmod, fsync, rename. An existing target that is a
    link (symbolic or hard), a folder or someone else's file is refused, unless replace_links (the entry itself
    is then replaced, never what it points to)."""
    rel = Path(rel)
    path = root / rel
    with folder(root, rel.parent, create=True) as parent:
        if not replace_links:
            _check_target(parent, rel.name, path)
        write_in(parent, rel.name, path, text.encode(), mode)
    return path


def write_in(parent: int, name: str, path: Path, data: bytes, mode: int) -> None:
    """Write data to a fresh temporary name in the folder `parent`, then rename it to `name`."""
    tmp, fd = _temp_file(parent, name, path, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, name, src_dir_fd=parent, dst_dir_fd=parent)
    except OSError as exc:
        _unlink_quietly(parent, tmp)
        if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
            raise UnsafeFile(
                f"{path} is a folder, not a file", f"move it aside (`mv {path} {path}.moved`), then run again"
            ) from None
        raise _os_error(path, exc) from None
    except BaseException:
        _unlink_quietly(parent, tmp)
        raise
    os.fsync(parent)


def _temp_file(parent: int, name: str, path: Path, mode: int) -> tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(20):
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return tmp, os.open(tmp, flags, mode & 0o600, dir_fd=parent)
        except FileExistsError:
            continue
        except OSError as exc:
            raise _os_error(path, exc) from None
    raise UnsafeFile(f"cannot create a temporary file beside {path}", "check the folder")


def _unlink_quietly(parent: int, name: str) -> None:
    with suppress(OSError):
        os.unlink(name, dir_fd=parent)


def _check_target(parent: int, name: str, path: Path) -> None:
    """An existing target must be affordml's own kind of file: regular, one link, ours."""
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFile(
            f"{path} is a symbolic link; affordml does not write its files through links",
            f"remove the link (`rm {path}`), then run again",
        )
    if stat.S_ISDIR(info.st_mode):
        raise UnsafeFile(f"{path} is a folder, not a file", f"move it aside (`mv {path} {path}.moved`), then run again")
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_uid != os.geteuid():
        fd = os.open(name, READ_FLAGS, dir_fd=parent)
        try:
            check_own_file(fd, path)
        finally:
            os.close(fd)


@contextmanager
def replacing(root: Path, rel: str | Path, mode: int = PRIVATE_FILE) -> Iterator:
    """A binary handle for root/rel's new content (streamed: a download); when the block ends without an error,
    the temporary file replaces root/rel by a rename, else it is removed."""
    rel = Path(rel)
    path = root / rel
    with folder(root, rel.parent, create=True) as parent:
        _check_target(parent, rel.name, path)
        tmp, fd = _temp_file(parent, rel.name, path, mode)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), mode)
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(tmp, rel.name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            _unlink_quietly(parent, tmp)
            raise


def own_file_exists(root: Path, rel: str | Path) -> bool:
    """True when root/rel is affordml's own kind of file; False when missing; a link or foreign file refused."""
    rel = Path(rel)
    try:
        with folder(root, rel.parent) as parent:
            fd = _open_own(parent, rel.name, root / rel, os.O_RDONLY | os.O_NONBLOCK)
    except MissingFile:
        return False
    if fd is None:
        return False
    os.close(fd)
    return True


def append_text(root: Path, rel: str | Path, text: str, mode: int = PRIVATE_FILE) -> Path:
    """Append to affordml's own file root/rel (created when missing); never through a link."""
    rel = Path(rel)
    path = root / rel
    with folder(root, rel.parent, create=True) as parent:
        fd = _open_own(parent, rel.name, path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
        assert fd is not None
        with os.fdopen(fd, "ab") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(text.encode())
            handle.flush()
            os.fsync(handle.fileno())
    return path


def open_own_rw(root: Path, rel: str | Path, mode: int = PRIVATE_FILE) -> int:
    """An fd (read/write, created when missing) of affordml's own file root/rel: the run lock."""
    rel = Path(rel)
    with folder(root, rel.parent, create=True) as parent:
        fd = _open_own(parent, rel.name, root / rel, os.O_RDWR | os.O_CREAT, mode)
        assert fd is not None
        os.fchmod(fd, mode)
        return fd


def tighten(root: Path, rel: str | Path, mode: int = PRIVATE_FILE) -> None:
    """Set the mode of affordml's own file root/rel (fchmod on an fd opened without following a link)."""
    rel = Path(rel)
    with folder(root, rel.parent) as parent:
        fd = _open_own(parent, rel.name, root / rel, os.O_RDONLY | os.O_NONBLOCK)
        if fd is not None:
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)


def backup_name(root: Path, name: str) -> Path:
    """Keep root/name under the first free name.bak.N (N = 1, 2, ...) by a new hard link to the same entry,
    which is never overwritten: no backup is ever lost."""
    with folder(root) as parent:
        if stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            path = root / name
            raise UnsafeFile(f"{path} is a folder, not a file", f"move it aside (`mv {path} {path}.moved`)")
        for number in range(1, 1000):
            backup = f"{name}.bak.{number}"
            try:
                os.link(name, backup, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
            except FileExistsError:
                continue
            except PermissionError:  # protected_hardlinks: someone else's file; keep a copy instead
                if not _copy_exclusive(parent, name, backup, root / backup):
                    continue
            except OSError as exc:
                raise _os_error(root / backup, exc) from None
            return root / backup
    raise UnsafeFile(f"{root / name}: 999 backups exist already", f"remove old {name}.bak.* files")


def _copy_exclusive(parent: int, name: str, backup: str, path: Path) -> bool:
    """Copy parent/name to a new file parent/backup; False when backup exists already."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        out = os.open(backup, flags, PRIVATE_FILE, dir_fd=parent)
    except FileExistsError:
        return False
    except OSError as exc:
        raise _os_error(path, exc) from None
    with os.fdopen(out, "wb") as target, open(os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=parent), "rb") as src:
        target.write(src.read(MAX_READ))
    return True


def write_beside(path: Path, text: str | bytes, mode: int = 0o644, may_replace=None) -> Path:
    """Write a file the user named, outside the project (`facts --save FILE`): its folder must exist; an
    existing entry is replaced only when it is a regular file with one link that may_replace(text) accepts."""
    parent = _open_parent(path)
    try:
        _check_replaceable(parent, path, may_replace)
        write_in(parent, path.name, path, text if isinstance(text, bytes) else text.encode(), mode)
    finally:
        os.close(parent)
    return path


def check_beside(path: Path, may_replace=None) -> None:
    """What write_beside would refuse, said before a long run rather than after it (a folder that is missing
    or not writable, a link, a folder or someone's other file at the path)."""
    parent = _open_parent(path)
    try:
        _check_replaceable(parent, path, may_replace)
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise _os_error(path, PermissionError(errno.EACCES, os.strerror(errno.EACCES)))
    finally:
        os.close(parent)


def _open_parent(path: Path) -> int:
    parent_path = path.parent
    try:
        parent = os.open(parent_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise MissingFile(
            f"the folder {parent_path} does not exist, so {path} cannot be written",
            f"create it first (`mkdir -p {parent_path}`), or choose another file",
        ) from None
    except NotADirectoryError:
        raise UnsafeFile(f"{parent_path} is not a folder, so {path} cannot be written", "choose another file") from None
    except OSError as exc:
        raise _os_error(path, exc) from None
    return parent


def _check_replaceable(parent: int, path: Path, may_replace) -> None:
    try:
        info = os.stat(path.name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFile(f"{path} is a symbolic link; affordml does not write through links", "choose another file")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{path} exists and is not a regular file", "choose another file")
    fd = os.open(path.name, READ_FLAGS, dir_fd=parent)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if info.st_nlink != 1:
            raise UnsafeFile(f"{path} has {info.st_nlink} hard links; affordml will not replace it", "choose another")
        current = handle.read(MAX_READ + 1)
    if may_replace is not None and not may_replace(current.decode(errors="replace")):
        raise UnsafeFile(f"{path} exists and is not a file affordml wrote; it was left as it is", "choose another file")


def remove_file(root: Path, rel: str | Path) -> bool:
    """Remove the entry root/rel (a link itself, never what it points to); False when it was not there."""
    rel = Path(rel)
    try:
        with folder(root, rel.parent) as parent:
            os.unlink(rel.name, dir_fd=parent)
    except (MissingFile, FileNotFoundError):
        return False
    except IsADirectoryError:
        path = root / rel
        raise UnsafeFile(f"{path} is a folder, not a file", f"move it aside (`mv {path} {path}.moved`)") from None
    except OSError as exc:
        raise _os_error(root / rel, exc) from None
    return True


def list_names(root: Path, rel: str | Path) -> list[str]:
    """The names in the folder root/rel (walked without following a link); [] when it does not exist."""
    try:
        with folder(root, rel) as fd:
            return sorted(os.listdir(fd))
    except MissingFile:
        return []
