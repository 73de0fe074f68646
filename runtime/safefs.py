"""The runtime's file primitives: safe for root to use where other users could write.

``om`` runs as root and keeps files under ``/dev/shm`` (world-writable), ``/run`` and
``/var/lib``. A path that another user can change under it turns root's writes into
theirs: a symlink planted as ``fs#1.flag`` makes root create ``/etc/nologin``, a
directory they own lets them fake or delete any flag or lock. So every file the
runtime writes goes through here, and here:

* a directory is **trusted** when it is owned by root (or by the user running ``om``)
  and is not writable by group or others, unless it is sticky (``/tmp``, ``/dev/shm``:
  others may add entries there, but not rename or remove ours, and every entry we use
  is checked in turn). Every component from ``/`` down is opened with ``O_NOFOLLOW``
  and checked; a symlink is followed only when a trusted user owns it (``/var/run``);
* directories are created with a fixed mode (``fchmod`` after ``mkdir``: the caller's
  umask, even ``000``, changes nothing);
* files are created with ``O_EXCL | O_NOFOLLOW`` and a fixed mode, replaced atomically
  (a temporary file renamed in the same directory), and an existing file is used only
  when it is a regular file with a trusted owner;
* anything else raises :class:`UnsafePathError`, whose message names the path, what is
  wrong with it (its owner, its mode) and what to do.

Paths must be absolute and free of ``..``; :mod:`omc.runtime.layout` builds them from
checked names only. Import-light: the status path calls :func:`is_file`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SYMLINKS = 40


class UnsafePathError(OSError):
    """A path another user could control: the runtime refuses to use it."""


def _trusted_uids() -> frozenset[int]:
    return frozenset((0, os.geteuid()))


def _who(uid: int) -> str:
    import pwd  # only to word an error

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _expected() -> str:
    euid = os.geteuid()
    return "root" if euid == 0 else f"root or {_who(euid)}"


def _refuse_owner(path: str, uid: int, *, what: str = "") -> UnsafePathError:
    return UnsafePathError(
        f"{path} {what}is owned by {_who(uid)}, not {_expected()}: omc will not use it "
        "(remove it, or give it to root once you know why it is there)"
    )


def check(st: os.stat_result, path: str) -> None:
    """Refuse what another user owns or may write (sticky directories aside)."""
    if st.st_uid not in _trusted_uids():
        raise _refuse_owner(path, st.st_uid)
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 and not (stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX):
        raise UnsafePathError(
            f"{path} is writable by group or others (mode {mode:04o}): omc will not use it "
            f"(chmod go-w {path} once you know why it is so)"
        )


def _absolute_parts(path: Path) -> list[str]:
    if not path.is_absolute() or ".." in path.parts:
        raise UnsafePathError(f"{path}: not an absolute path without '..'")
    return list(path.parts[1:])


class _Walk:
    """Opens the directories of one path from ``/`` down, each checked before use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open("/", _DIR_FLAGS)
        self.at = Path("/")
        self.hops = 0
        check(os.fstat(self.fd), "/")

    def close(self) -> None:
        os.close(self.fd)

    def enter(self, name: str, create: int | None) -> list[str]:
        """Step into ``name`` (created with mode ``create`` when missing and not None);
        returns path parts to walk first, when ``name`` was a trusted symlink."""
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            if create is None:
                raise
            fd = self._make(name, create)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):  # a symlink, or not a directory
                raise
            return self._symlink(name, exc)
        self._step(fd, name)
        return []

    def _make(self, name: str, mode: int) -> int:
        with contextlib.suppress(FileExistsError):  # lost a race: checked like any other
            os.mkdir(name, mode, dir_fd=self.fd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
            os.fchmod(fd, mode)
            return fd
        return os.open(name, _DIR_FLAGS, dir_fd=self.fd)

    def _step(self, fd: int, name: str) -> None:
        where = self.at / name
        try:
            check(os.fstat(fd), str(where))
        except UnsafePathError:
            os.close(fd)
            raise
        os.close(self.fd)
        self.fd, self.at = fd, where

    def _symlink(self, name: str, exc: OSError) -> list[str]:
        where = self.at / name
        st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(f"{where} is not a directory") from exc
        if st.st_uid not in _trusted_uids():
            raise _refuse_owner(str(where), st.st_uid, what="is a symlink and ") from exc
        self.hops += 1
        if self.hops > _MAX_SYMLINKS:
            raise UnsafePathError(f"{self.path}: too many levels of symbolic links") from exc
        target = os.readlink(name, dir_fd=self.fd)
        if target.startswith("/"):
            os.close(self.fd)
            self.fd, self.at = os.open("/", _DIR_FLAGS), Path("/")
        return [p for p in target.split("/") if p not in ("", ".")]

    def step_up(self) -> None:
        """``..`` inside a trusted symlink's target: the real parent, checked like the rest."""
        fd = os.open("..", _DIR_FLAGS, dir_fd=self.fd)
        self._step(fd, "..")
        self.at = self.at.parent.parent


def open_dir(path: Path, *, create: int | None = None, parents: int = 0o755) -> int:
    """A file descriptor on directory ``path``, every component trusted (see the module).

    Missing directories are created when ``create`` is a mode: ``path`` itself with
    that mode, missing ancestors with ``parents``. Raises FileNotFoundError when
    ``create`` is None and something is missing, :class:`UnsafePathError` when a
    component is not trusted. The caller closes the descriptor.
    """
    parts = _absolute_parts(path)
    walk = _Walk(path)
    try:
        while parts:
            name = parts.pop(0)
            if name == "..":
                walk.step_up()
                continue
            mode = None if create is None else (create if not parts else parents)
            parts[:0] = walk.enter(name, mode)
    except BaseException:
        walk.close()
        raise
    return walk.fd


@contextlib.contextmanager
def directory(path: Path, *, create: int | None = None, parents: int = 0o755) -> Iterator[int]:
    """:func:`open_dir` as a context manager."""
    fd = open_dir(path, create=create, parents=parents)
    try:
        yield fd
    finally:
        os.close(fd)


def ensure_dir(path: Path, mode: int = 0o755, *, parents: int = 0o755) -> None:
    """Create ``path`` (mode ``mode``, missing ancestors ``parents``) or check it is trusted."""
    os.close(open_dir(path, create=mode, parents=parents))


def check_file(st: os.stat_result, path: Path) -> None:
    """A file the runtime uses: regular (never a symlink), with a trusted owner and mode."""
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{path} is a symlink: omc does not follow symlinks there")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{path} is not a regular file")
    check(st, str(path))


def _check_entry(dir_fd: int, name: str, path: Path) -> None:
    check_file(os.stat(name, dir_fd=dir_fd, follow_symlinks=False), path)


def create_file(path: Path, *, mode: int = 0o644, dir_mode: int = 0o755) -> bool:
    """``touch`` made safe: create ``path`` empty unless it exists; True when created."""
    with directory(path.parent, create=dir_mode) as dir_fd:
        try:
            fd = os.open(path.name, _NEW, mode, dir_fd=dir_fd)
        except FileExistsError:
            _check_entry(dir_fd, path.name, path)
            return False
        os.fchmod(fd, mode)
        os.close(fd)
        return True


def write_file(path: Path, data: bytes | str, *, mode: int = 0o644, dir_mode: int = 0o755) -> None:
    """Replace ``path`` atomically with ``data`` (a new file renamed over the old one)."""
    raw = data.encode() if isinstance(data, str) else data
    with directory(path.parent, create=dir_mode) as dir_fd:
        tmp = f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
        fd = os.open(tmp, _NEW, mode, dir_fd=dir_fd)
        try:
            try:
                os.fchmod(fd, mode)
                with os.fdopen(fd, "wb", closefd=False) as out:
                    out.write(raw)
            finally:
                os.close(fd)
            os.rename(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:  # a full disk, a directory in the way: leave nothing behind
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise


def read_text(path: Path) -> str:
    """The content of a trusted regular file (FileNotFoundError when it is missing)."""
    with directory(path.parent) as dir_fd:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=dir_fd)  # fmt: skip
        with os.fdopen(fd, "rb") as src:
            check_file(os.fstat(src.fileno()), path)
            return src.read().decode("utf-8", "replace")


def is_file(path: Path) -> bool:
    """Whether ``path`` is a regular file a trusted user made, in trusted directories.

    False when it is missing; :class:`UnsafePathError` when something another user
    controls is in the way (their file does not count: flags cannot be faked).
    """
    try:
        with directory(path.parent) as dir_fd:
            _check_entry(dir_fd, path.name, path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def remove(path: Path) -> bool:
    """Remove the file ``path`` (never what a symlink points to); False when missing."""
    try:
        with directory(path.parent) as dir_fd:
            os.unlink(path.name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def entries(path: Path) -> list[str]:
    """The names in a trusted directory (empty when it is missing)."""
    try:
        with directory(path) as dir_fd:
            return sorted(os.listdir(dir_fd))  # noqa: PTH208 - a descriptor, not a path
    except FileNotFoundError:
        return []


def open_lock(path: Path, *, dir_mode: int = 0o755) -> int:
    """A descriptor on lock file ``path`` (created 0600 when missing) to ``flock``."""
    with directory(path.parent, create=dir_mode) as dir_fd:
        fd = os.open(path.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dir_fd)  # fmt: skip
    try:
        check_file(os.fstat(fd), path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def try_lock(fd: int) -> bool:
    """Take the exclusive ``flock`` on ``fd`` if it is free now (True), else False: for
    callers that must not wait (the object lock's polling, the collector's sender)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def symlink(path: Path, target: str, *, dir_mode: int = 0o755) -> None:
    """Point the symlink ``path`` at ``target``, atomically (a new link renamed over)."""
    with directory(path.parent, create=dir_mode) as dir_fd:
        tmp = f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}"
        os.symlink(target, tmp, dir_fd=dir_fd)
        try:
            os.rename(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError:
            os.unlink(tmp, dir_fd=dir_fd)
            raise


def readlink(path: Path) -> str | None:
    """Where the symlink ``path`` points, or None (missing, or not a symlink)."""
    try:
        with directory(path.parent) as dir_fd:
            return os.readlink(path.name, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # not a symlink
            return None
        raise


def bind_socket(
    sock: socket.socket, path: Path, *, mode: int = 0o600, dir_mode: int = 0o700
) -> None:
    """Bind a unix socket at ``path`` in a trusted directory, replacing a stale one; then
    give it ``mode`` (bind(2) takes the umask's, and ``0o700`` directories keep others
    from even reaching it in between)."""
    with directory(path.parent, create=dir_mode) as dir_fd:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path.name, dir_fd=dir_fd)
        sock.bind(str(path))  # the directory is trusted: nobody else can swap the entry
        os.chmod(path.name, mode, dir_fd=dir_fd)


def write_new(path: Path, data: bytes | str, *, mode: int = 0o644, dir_mode: int = 0o755) -> bool:
    """Create ``path`` with ``data`` unless it exists (False then): the file appears whole
    or not at all (a temporary file linked into place), and an existing one is never
    replaced, so two processes racing to create it agree on one content."""
    with directory(path.parent, create=dir_mode) as dir_fd:
        tmp = stage_at(dir_fd, data, mode=mode)
        try:
            return publish_at(dir_fd, tmp, path.name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)


# --- fd-relative primitives for a trusted directory held open (the collector spool) ------


def stage_at(dir_fd: int, data: bytes | str, *, mode: int = 0o600) -> str:
    """Write ``data`` to a new hidden file of the directory ``dir_fd``; returns its name
    (:func:`publish_at` gives it its real name, :func:`unlink_at` drops it)."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = f".{os.getpid()}.{os.urandom(6).hex()}.tmp"
    fd = os.open(tmp, _NEW, mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    return tmp


def publish_at(dir_fd: int, tmp: str, name: str) -> bool:
    """Give the staged file ``tmp`` the name ``name`` unless that exists (False): a hard
    link, atomic and never replacing. The caller removes ``tmp`` afterwards."""
    try:
        os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        return False
    return True


def unlink_at(dir_fd: int, name: str) -> bool:
    """Remove the entry ``name`` of the directory ``dir_fd``; False when it is missing."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def move_at(dir_fd: int, name: str, sub: str, *, mode: int = 0o700) -> None:
    """Move the entry ``name`` into the subdirectory ``sub`` (created with ``mode``)."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(sub, mode, dir_fd=dir_fd)
    sub_fd = os.open(sub, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        check(os.fstat(sub_fd), sub)
        os.rename(name, name, src_dir_fd=dir_fd, dst_dir_fd=sub_fd)
    finally:
        os.close(sub_fd)


def open_lock_at(dir_fd: int, name: str) -> int:
    """A descriptor on the lock file ``name`` of ``dir_fd`` (created 0600), to ``flock``."""
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=dir_fd)  # fmt: skip
    try:
        check_file(os.fstat(fd), Path(name))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_at(dir_fd: int, name: str) -> bytes:
    """The content of the regular file ``name`` in ``dir_fd`` (checked like any file)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as src:
        check_file(os.fstat(src.fileno()), Path(name))
        return src.read()


def fsync_at(dir_fd: int, names: list[str]) -> None:
    """Flush the files ``names`` and the directory itself to disk (missing ones skipped)."""
    for name in names:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.fsync(dir_fd)
