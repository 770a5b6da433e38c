"""Output files written whole or not at all: a temp file beside the output, renamed over it on success.

A symlink is written through (its target replaced, the link kept). A pipe (a named pipe, /dev/stdout into `|`)
gets the output whole once complete, copied into it, and a reader waiting on it gets end-of-file on an error; a
device (/dev/null) is written directly: renaming a file over either would replace it. A path that names one of
this process's own descriptors open on a regular file (/dev/stdout redirected to a file, /dev/fd/N) is written
whole through that descriptor once complete: renaming over it would replace the file behind the shell's
redirection, and opening it again would truncate it or write at an offset the descriptor does not share."""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path` to write; on success it is synced and renamed over `path`.

    On any exception (Ctrl-C included) the temp file is deleted and `path` is left as it was: absent, or the
    previous file untouched. The temp file keeps `path`'s suffix (audio writers pick the format from it) and is
    hidden: `.NAME.XXXXXXXX.tmp.SUFFIX`; only a killed process (SIGKILL, power loss) can leave one behind. An
    error message that names the temp file is rewritten to name `path`.
    """
    given = Path(path)
    descriptor = descriptor_of(given)
    if descriptor is not None and _on_regular_file(descriptor):
        # Found from outside: `--stats-json /dev/stdout >> log` renamed the JSON over the log, losing it.
        with _copied_when_complete(given, lambda: open(os.dup(descriptor), "wb")) as temp:
            yield temp
        return
    if _is_named_pipe(given):
        # Found from outside: libsndfile cannot write a WAV into a pipe (the header's length is written by seeking
        # back), so a pipe gets the output whole once complete, as a file would.
        try:
            with _copied_when_complete(given, lambda: open(given, "wb")) as temp:
                yield temp
        except BaseException:
            _end_waiting_reader(given)
            raise
        return
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


@contextmanager
def copied_to_standard_output(suffix: str) -> Iterator[Path]:
    """For an output of STANDARD_OUTPUT whose writer seeks (a WAV's header holds its length, and standard output may
    be a pipe): a temp file ending in `suffix` (the format it is written in), copied to standard output once
    complete and deleted either way, as `atomic_output` gives a pipe its output."""
    with _copied_when_complete(Path("/dev/stdout"), lambda: nullcontext(sys.stdout.buffer), suffix) as temp:
        yield temp


@contextmanager
def _copied_when_complete(given: Path, open_target: Callable[[], AbstractContextManager[BinaryIO]],
                          suffix: str | None = None) -> Iterator[Path]:
    """A temp file (in the temp folder, with `suffix`, by default `given`'s) copied into `open_target()` (a
    descriptor at its own offset, a named pipe, standard output) on success and deleted either way: nothing reaches
    the target before the output is complete."""
    fd, name = tempfile.mkstemp(prefix=".sscodec.", suffix=f".tmp{given.suffix if suffix is None else suffix}")
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
        for stream in (sys.stdout, sys.stderr):  # what was printed before goes first
            if stream is not None:
                stream.flush()
        with open(temp, "rb") as written, open_target() as target:
            shutil.copyfileobj(written, target)
            target.flush()  # standard output's buffer is not closed here
    except BaseException as error:
        _rename_in_message(error, str(temp), str(given))
        raise
    finally:
        temp.unlink(missing_ok=True)


def _on_regular_file(descriptor: int) -> bool:
    try:
        return stat.S_ISREG(os.fstat(descriptor).st_mode)
    except OSError:  # not open: left to the writer, whose error names the path
        return False


_DESCRIPTOR_LINK = re.compile(r"/proc/(self|\d+)/fd/(\d+)")


def descriptor_of(path: str | os.PathLike) -> int | None:
    """The file descriptor of this process that `path` names (/dev/stdout, /dev/fd/N, /proc/self/fd/N, or a link
    to one of them), else None. The links are followed one by one: resolving them all would give the file the
    descriptor is open on, not the descriptor."""
    current = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        # The folder's links first (/dev/fd/N: /dev/fd is the link), then the name's own.
        current = os.path.join(os.path.realpath(os.path.dirname(current)), os.path.basename(current))
        found = _DESCRIPTOR_LINK.fullmatch(current)
        if found and found[1] in ("self", str(os.getpid())):
            return int(found[2])
        try:
            target = os.readlink(current)
        except OSError:  # not a link (or one we may not read: another process's descriptor)
            return None
        current = os.path.normpath(os.path.join(os.path.dirname(current), target))
    return None


# An OUTPUT of "-" that its writer sends to standard output its own way (`OutputFile(dash=STANDARD_OUTPUT)`):
# audio as a WAV made whole first (`audio.audio_output`).
STANDARD_OUTPUT = "-"


def output_target(path: str | os.PathLike) -> Path:
    """The file an output at `path` is written to: /dev/stdout for STANDARD_OUTPUT, else `path`."""
    return Path("/dev/stdout") if os.fspath(path) == STANDARD_OUTPUT else Path(path)


def writes_stdout(path: str | os.PathLike | None) -> bool:
    """Whether an output at `path` goes to this process's standard output (its human summary then belongs on
    stderr)."""
    return path is not None and descriptor_of(output_target(path)) == 1


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


def umask_mode(mode: int) -> int:
    """`mode` less this process's umask: what open() (0o666) or mkdir() (0o777) gives a new file or folder, which
    mkstemp's 0600 and mkdtemp's 0700 do not (outputs made through them would be unreadable to others)."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _take_permissions(temp: Path, path: Path) -> None:
    """Give `temp` the mode, group and (where allowed) owner of the file `path` it will replace, as an in-place
    write would keep them (a private 0600 recording stays private); for a new file, 0666 less the umask, as
    open() gives (mkstemp's 0600 would make the output unreadable to others)."""
    try:
        old = path.stat()
    except FileNotFoundError:
        os.chmod(temp, umask_mode(0o666))
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


def _end_waiting_reader(pipe: Path) -> None:
    """Give a reader waiting on `pipe` end-of-file (nothing was written): open it without blocking, which fails
    where nobody reads, and close it."""
    try:
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def _is_named_pipe(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


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
    given = output_target(path)
    descriptor = descriptor_of(given)
    if descriptor is not None:  # written through the descriptor (atomic_output)
        try:
            os.write(descriptor, b"")  # the kernel's own check: EBADF unless open for writing
        except OSError as error:
            # Any other error is the real one (found from outside: /dev/full's ENOSPC was "not open for writing").
            reason = "not open for writing" if error.errno == errno.EBADF else error.strerror
            raise OSError(error.errno, reason, str(given)) from None
        return
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
