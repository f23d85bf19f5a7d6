"""Files of a run folder, read safely: path confinement, log tails, listings, tar.gz streams.

Everything a web request names by path goes through :func:`confine` (or :func:`open_confined`):
the path must be relative, free of NUL and ``..``, and must still lie inside its root once
every symlink is resolved. Files are opened with ``O_NOFOLLOW`` and checked again through
``/proc/self/fd`` after opening, so a symlink swapped in between the check and the open (a job
runs user code in its task folder) cannot lead outside either. Refusals raise
:class:`PathRefused`; callers answer 404.

This module does not import Flask.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tarfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

#: Bytes read per chunk when streaming files.
CHUNK = 256 * 1024
#: Most bytes one log-tail answer carries.
LOG_CHUNK = 64 * 1024


class PathRefused(ValueError):
    """A path that is malformed or would lead outside its root (answer 404)."""


# --------------------------------------------------------------------------- confinement


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def check_relpath(relpath: str) -> PurePosixPath:
    """``relpath`` as a clean relative path; refuses empty, absolute, NUL and ``..`` parts."""
    if not isinstance(relpath, str) or not relpath or "\x00" in relpath:
        raise PathRefused("empty path or NUL character")
    if relpath.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", relpath):
        raise PathRefused("absolute paths are refused")
    parts = [part for part in relpath.replace("\\", "/").split("/") if part not in ("", ".")]
    if not parts:
        raise PathRefused("empty path")
    if ".." in parts:
        raise PathRefused("'..' is refused")
    return PurePosixPath(*parts)


def confine(root: str | os.PathLike[str], relpath: str) -> Path:
    """``root/relpath`` with every symlink resolved, refusing anything outside ``root``.

    The target need not exist. Raises :class:`PathRefused`.
    """
    clean = check_relpath(relpath)
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, *clean.parts))
    if not _inside(real, real_root):
        raise PathRefused("the path leads outside its folder")
    return Path(real)


def _fd_inside(fd: int, real_root: str) -> bool:
    link = f"/proc/self/fd/{fd}"
    if not os.path.exists(link):  # no procfs: the resolve check before opening stands
        return True
    return _inside(os.path.realpath(link), real_root)


def open_confined(root: str | os.PathLike[str], relpath: str, owners: Owners = None) -> BinaryIO:
    """Open the regular file ``root/relpath`` for reading, confined to ``root``.

    Raises :class:`PathRefused` for refused paths, missing files and anything that is not a
    regular file with one link owned by one of ``owners`` (see :func:`servable`).
    """
    path = confine(root, relpath)
    return _open_regular(path, os.path.realpath(root), owners)


#: The uids whose files may be served (the portal's own and the job's user); None: any owner.
Owners = frozenset[int] | None


def servable(info: os.stat_result, owners: Owners = None) -> bool:
    """A regular file with exactly one link, owned by one of ``owners``: a hard link made in a
    task folder (to the instance's ``secret_key``, say) has two links and is never served."""
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_nlink == 1
        and (owners is None or info.st_uid in owners)
    )


def _open_regular(path: Path, real_root: str, owners: Owners = None) -> BinaryIO:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in must not block the worker
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise PathRefused(f"cannot open: {exc.strerror}") from None
    try:
        if not servable(os.fstat(fd), owners) or not _fd_inside(fd, real_root):
            raise PathRefused("not a servable regular file inside the folder")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class LogChunk:
    """Bytes of a growing file: ``data`` starts at ``start``; ask next from ``offset``.

    ``reset`` says the file is shorter than the offset asked for (it was replaced), so the
    reader must start over; ``size`` is the file size when read.
    """

    data: bytes
    start: int
    offset: int
    size: int
    reset: bool = False


def read_chunk(
    root: str | os.PathLike[str],
    relpath: str,
    offset: int | None,
    limit: int = LOG_CHUNK,
    owners: Owners = None,
) -> LogChunk:
    """Read at most ``limit`` bytes of ``root/relpath`` from ``offset``.

    ``offset`` None means "the last ``limit`` bytes" (a tail). A missing file reads as empty
    (a pending task has no log yet); a refused path raises :class:`PathRefused`.
    """
    if offset is not None and offset < 0:
        raise PathRefused("negative offset")
    try:
        handle = open_confined(root, relpath, owners)
    except PathRefused:
        if not confine(root, relpath).exists():
            return LogChunk(b"", 0, 0, 0, reset=bool(offset))
        raise
    with handle:
        size = os.fstat(handle.fileno()).st_size
        reset = offset is not None and offset > size
        start = max(size - limit, 0) if offset is None else (0 if reset else offset)
        handle.seek(start)
        data = handle.read(limit)
    return LogChunk(data, start, start + len(data), size, reset)


# --------------------------------------------------------------------------- listings


@dataclass(frozen=True)
class FileEntry:
    """A regular file below a folder: its relative POSIX path, size and mtime."""

    relpath: str
    size: int
    mtime: float


def list_files(
    root: str | os.PathLike[str], limit: int = 2000, owners: Owners = None
) -> tuple[list[FileEntry], bool]:
    """Servable files below ``root`` (:func:`servable`: symlinks, special files and hard
    links skipped), sorted by path.

    Returns (entries, truncated): at most ``limit`` entries.
    """
    real_root = os.path.realpath(root)
    entries: list[FileEntry] = []
    truncated = False
    if not os.path.isdir(real_root):
        return [], False
    for folder, dirs, files in os.walk(real_root, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            try:
                info = os.lstat(full)
            except OSError:
                continue
            if not servable(info, owners):
                continue
            if len(entries) >= limit:
                truncated = True
                break
            rel = os.path.relpath(full, real_root).replace(os.sep, "/")
            entries.append(FileEntry(rel, info.st_size, info.st_mtime))
        if truncated:
            break
    entries.sort(key=lambda e: e.relpath)
    return entries, truncated


# --------------------------------------------------------------------------- tar.gz stream


def _tar_member(
    tar_name: str, info: os.stat_result, kind: bytes = tarfile.REGTYPE
) -> tarfile.TarInfo:
    member = tarfile.TarInfo(tar_name)
    member.type = kind
    executable = kind == tarfile.DIRTYPE or bool(info.st_mode & 0o111)
    member.mode = 0o755 if executable else 0o644
    member.mtime = int(info.st_mtime)
    member.size = info.st_size if kind == tarfile.REGTYPE else 0
    return member


class _Gzip:
    """Incremental gzip (zlib with the gzip wrapper)."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31)

    def feed(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def finish(self) -> bytes:
        return self._z.flush()


def _file_blocks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """Exactly ``size`` bytes of the file (zero-padded if it shrank) plus tar block padding."""
    left = size
    while left > 0:
        data = handle.read(min(CHUNK, left))
        if not data:
            yield b"\0" * left  # the file shrank while being read
            break
        left -= len(data)
        yield data
    remainder = size % tarfile.BLOCKSIZE
    if remainder:
        yield b"\0" * (tarfile.BLOCKSIZE - remainder)


def stream_tar_gz(
    root: str | os.PathLike[str],
    top: str,
    extra: list[tuple[str | os.PathLike[str], str, str]] | None = None,
    owners: Owners = None,
) -> Iterator[bytes]:
    """A tar.gz of the folder ``root`` (as ``top/...``), produced chunk by chunk.

    Only directories and servable files (:func:`servable`) are included (symlinks, special
    files and hard links are left out); each file is opened confined to ``root``. ``extra``
    adds single files as ``(their root, relative path, name in the archive)``, confined the
    same way; missing ones are skipped. Memory stays bounded by :data:`CHUNK` whatever the
    folder size.
    """
    real_root = os.path.realpath(root)
    gz = _Gzip()
    encoding = tarfile.PAX_FORMAT

    def header(member: tarfile.TarInfo) -> bytes:
        return gz.feed(member.tobuf(encoding, "utf-8", "surrogateescape"))

    def one_file(handle: BinaryIO, name: str) -> Iterator[bytes]:
        with handle:
            info = os.fstat(handle.fileno())
            yield header(_tar_member(name, info))
            for block in _file_blocks(handle, info.st_size):
                out = gz.feed(block)
                if out:
                    yield out

    if os.path.isdir(real_root):
        yield header(_tar_member(top, os.stat(real_root), tarfile.DIRTYPE))
        for folder, dirs, files in os.walk(real_root, followlinks=False):
            dirs.sort()
            rel_folder = os.path.relpath(folder, real_root)
            for name in dirs:
                full = os.path.join(folder, name)
                info = os.lstat(full)
                if stat.S_ISDIR(info.st_mode):
                    rel = os.path.normpath(os.path.join(rel_folder, name))
                    yield header(_tar_member(f"{top}/{rel}", info, tarfile.DIRTYPE))
            for name in sorted(files):
                rel = os.path.normpath(os.path.join(rel_folder, name)).replace(os.sep, "/")
                try:
                    if not servable(os.lstat(os.path.join(folder, name)), owners):
                        continue
                    handle = _open_regular(Path(real_root, rel), real_root, owners)
                except (PathRefused, OSError):
                    continue
                yield from one_file(handle, f"{top}/{rel}")
    for extra_root, relpath, name in extra or []:
        try:
            handle = open_confined(extra_root, relpath, owners)
        except PathRefused:
            continue
        yield from one_file(handle, f"{top}/{name}")
    yield gz.feed(b"\0" * (2 * tarfile.BLOCKSIZE))
    yield gz.finish()


def cache_file(folder: str | os.PathLike[str], name: str, data: bytes) -> bool:
    """Write ``data`` to ``folder/name`` atomically, never through a symlink; False on failure.

    A temporary file is created with ``O_EXCL | O_NOFOLLOW`` and renamed over ``name``
    (a rename replaces a symlink itself, never its target).
    """
    if "/" in name or name in ("", ".", ".."):
        raise PathRefused(f"bad cache file name {name!r}")
    real = os.path.realpath(folder)
    tmp = os.path.join(real, f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, os.path.join(real, name))
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False


__all__ = [
    "FileEntry",
    "LogChunk",
    "PathRefused",
    "cache_file",
    "check_relpath",
    "confine",
    "list_files",
    "open_confined",
    "read_chunk",
    "stream_tar_gz",
]
