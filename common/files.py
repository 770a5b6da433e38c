"""Output files written whole or not at all: a temp file beside the output, renamed over it on success.

A symlink is written through (its target replaced, the link kept); a device or FIFO (/dev/null, /dev/stdout, a
named pipe) is written directly, since renaming a file over it would replace the device itself."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path` to write; on success it is synced and renamed over `path`.

    On any exception (Ctrl-C included) the temp file is deleted and `path` is left as it was: absent, or the
    previous file untouched. The temp file keeps `path`'s suffix (audio writers pick the format from it) and is
    hidden: `.NAME.XXXXXXXX.tmp.SUFFIX`; only a killed process (SIGKILL, power loss) can leave one behind. An
    error message that names the temp file is rewritten to name `path`.
    """
    given = Path(path)
    if _is_special(given):
        yield given
        return
    path = Path(os.path.realpath(given))
    _check_overwritable(path, given)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(given)) from None
    os.close(fd)
    temp = Path(name)
    try:
        _take_permissions(temp, path)
        yield temp
        with open(temp, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temp, path)
    except BaseException as error:
        temp.unlink(missing_ok=True)
        _rename_in_message(error, str(temp), str(given))
        raise


def _check_overwritable(path: Path, given: Path) -> None:
    """PermissionError naming `given` when `path` is an existing file this process may not write: replacing it by
    a rename would succeed (that needs only the folder), so a read-only output would be overwritten where `cp`
    refuses. Probed by opening it for writing without truncating it: the kernel's own check, root included."""
    try:
        os.close(os.open(path, os.O_WRONLY))
    except FileNotFoundError:
        return
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise OSError(error.errno, error.strerror, str(given)) from None
        # EISDIR and the like: left to the writer, whose own error names the path.


def _take_permissions(temp: Path, path: Path) -> None:
    """Give `temp` the mode, group and (where allowed) owner of the file `path` it will replace, as an in-place
    write would keep them (a private 0600 recording stays private); for a new file, 0666 less the umask, as
    open() gives (mkstemp's 0600 would make the output unreadable to others)."""
    try:
        old = path.stat()
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        return
    os.chmod(temp, stat.S_IMODE(old.st_mode))
    for owner in (old.st_uid, -1):  # only root may give a file away; any member may set one of its groups
        try:
            os.chown(temp, owner, old.st_gid)
            return
        except PermissionError:
            continue


def _rename_in_message(error: BaseException, temp: str, path: str) -> None:
    """Make `error` name `path` where it names `temp` (one-string messages and OSError file names)."""
    if isinstance(error, OSError):
        if error.filename == temp:
            error.filename = path
    elif len(error.args) == 1 and isinstance(error.args[0], str) and temp in error.args[0]:
        error.args = (error.args[0].replace(temp, path),)


def _is_special(path: Path) -> bool:
    """An existing file (symlinks followed) that is neither a regular file nor a folder: a device, FIFO or
    socket."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def same_file(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Whether two paths name one file: the same inode where both exist (links, symlinks), else the same path."""
    try:
        return os.path.samefile(first, second)
    except OSError:
        return Path(first).resolve() == Path(second).resolve()


def check_can_create(path: str | os.PathLike, parents: bool = False) -> None:
    """Raise OSError naming `path` unless a new file can be created beside it, before any work is done.

    Probed by creating and removing a hidden temp file in the folder (permissions alone do not tell: root,
    read-only mounts, /proc). With `parents`, the folder may be missing and is probed at its nearest existing
    ancestor, for writers that create their folders.
    """
    given = Path(path)
    if _is_special(given):  # written directly (atomic_output), not beside
        if not os.access(given, os.W_OK):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(given))
        return
    path = Path(os.path.realpath(given))
    _check_overwritable(path, given)
    folder = path.parent
    while parents and not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(given)) from None
    os.close(fd)
    os.unlink(name)
