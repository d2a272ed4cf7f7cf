"""Deterministic tar archives of folders, and safe extraction of them."""

from __future__ import annotations

import hashlib
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from flotilla.errors import ArtifactError, UnsafeArtifactError

__all__ = ["HashingWriter", "safe_extract", "tree_sha256", "write_tar"]


class HashingWriter:
    """A write-only file object that hashes what passes through (and optionally keeps it)."""

    def __init__(self, sink: BinaryIO | None = None) -> None:
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        if self.sink is not None:
            self.sink.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def _entries(root: Path) -> list[tuple[str, Path]]:
    """Every entry below ``root`` as (posix relative name, path), sorted by name."""
    out = [(p.relative_to(root).as_posix(), p) for p in root.rglob("*")]
    return sorted(out)


def _info(name: str, mode: int, *, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tar(root: Path, out: BinaryIO | HashingWriter) -> None:
    """Write ``root``'s content as a reproducible tar to ``out``.

    Names are sorted, times are 0, owners are 0, modes are 0o755 (folders and executables)
    or 0o644, and the GNU format adds no timestamped pax headers: the same folder content
    always gives the same bytes. Links and special files are refused.
    """
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:  # type: ignore[call-overload]
        for name, path in _entries(root):
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise ArtifactError(
                    f"The artifact folder {str(root)!r} contains the link {name!r}. Links are "
                    f"not stored; replace it with a copy of its target and register again."
                )
            if stat.S_ISDIR(st.st_mode):
                tar.addfile(_info(name, 0o755, kind=tarfile.DIRTYPE))
            elif stat.S_ISREG(st.st_mode):
                mode = 0o755 if st.st_mode & 0o111 else 0o644
                with path.open("rb") as fh:
                    tar.addfile(_info(name, mode, size=st.st_size), fh)
            else:
                raise ArtifactError(
                    f"The artifact folder {str(root)!r} contains {name!r}, which is neither a "
                    f"file nor a folder. Remove it and register again."
                )


def tree_sha256(root: Path) -> str:
    """The sha256 that :func:`write_tar` gives for ``root`` (used to verify unpacked folders)."""
    writer = HashingWriter()
    write_tar(root, writer)
    return writer.hexdigest()


def _check_member(member: tarfile.TarInfo, *, label: str) -> None:
    name = member.name
    parts = Path(name).parts
    problem = None
    if name.startswith(("/", "\\")) or Path(name).is_absolute():
        problem = "an absolute path"
    elif ".." in parts or "\\" in name:
        problem = "a path that leaves the folder"
    elif not (member.isfile() or member.isdir()):
        problem = "a link or special file"
    if problem is not None:
        raise UnsafeArtifactError(
            f"The folder artifact of {label} contains {name!r}, {problem}; it was not "
            f"extracted. The archive was not written by Flotilla: re-register the version "
            f"from the original folder."
        )


def safe_extract(archive: Path, dest: Path, *, label: str) -> None:
    """Extract ``archive`` into ``dest`` after checking every member is a plain, inner path.

    Raises:
        UnsafeArtifactError: a member is absolute, climbs out with ``..``, or is a link.
    """
    with tarfile.open(archive, mode="r:") as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member, label=label)
        tar.extractall(dest, members=members, filter="data")
