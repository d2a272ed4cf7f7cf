"""Content-addressed artifact storage.

A stored artifact is known by the sha256 of its bytes. A folder is stored as a reproducible
tar (see :func:`flotilla.registry._tarball.write_tar`), so the same folder always gets the
same sha256. Every fetch re-hashes the stored bytes, so a damaged or tampered artifact is
never handed to a loader.

Layout of :class:`LocalArtifactStore` under its root::

    sha256/ab/cdef...        the blob (file bytes, or the folder's tar)
    sha256/ab/cdef....json   what the first put recorded: kind, filename, size
    named/<sha256>/<name>    a file blob under its original name (loaders need the suffix)
    unpacked/<sha256>/       a folder blob, extracted
    tmp/                     temporary files, renamed into place atomically
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from flotilla.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ConfigError,
    StorageError,
)
from flotilla.registry._tarball import HashingWriter, safe_extract, tree_sha256, write_tar

__all__ = ["ArtifactStore", "LocalArtifactStore", "StoredArtifact"]

_CHUNK = 1 << 20
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
KINDS = ("file", "dir")


@dataclass(frozen=True)
class StoredArtifact:
    """What :meth:`ArtifactStore.put` stored: content hash, size in bytes, kind and file name.

    ``kind`` is ``"file"`` or ``"dir"`` (a folder, stored as a tar; ``size`` is the tar's).
    ``filename`` is the original base name; loaders rely on its suffix (``.onnx``, ``.txt``).
    """

    sha256: str
    size: int
    kind: str
    filename: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return asdict(self)


@runtime_checkable
class ArtifactStore(Protocol):
    """Where version artifacts live, addressed by the sha256 of their content.

    ``fetch`` always returns a *local* path: a remote store (S3 through fsspec) downloads
    into a local cache first and verifies the hash there.
    """

    def put(self, path: Path) -> StoredArtifact:
        """Store a file or folder (idempotent for the same content) and describe it."""
        ...

    def fetch(
        self, sha256: str, *, label: str, kind: str | None = None, filename: str | None = None
    ) -> Path:
        """A verified local path of the artifact (a file with its original name, or a folder).

        ``label`` (e.g. ``"churn@3"``) names the artifact in error messages. ``kind`` and
        ``filename`` override what was recorded when it was put.
        """
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the store holds this content."""
        ...


def _check_sha(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA_RE.match(sha256):
        raise ConfigError(f"An artifact id must be 64 lowercase hex digits. Got {sha256!r}.")
    return sha256


def _check_filename(filename: str) -> str:
    if not filename or filename in (".", "..") or "/" in filename or "\\" in filename:
        raise ConfigError(
            f"An artifact file name must be a plain base name such as 'model.onnx'. "
            f"Got {filename!r} instead."
        )
    return filename


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LocalArtifactStore:
    """An :class:`ArtifactStore` in a local folder (see the module docstring for the layout).

    Args:
        root: the store's folder; created on the first ``put``.

    Example:
        >>> store = LocalArtifactStore(tmp / "artifacts")          # doctest: +SKIP
        >>> art = store.put(Path("model.onnx"))                     # doctest: +SKIP
        >>> store.fetch(art.sha256, label="churn@1").name            # doctest: +SKIP
        'model.onnx'
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- paths -----------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        """Where the bytes of ``sha256`` are stored."""
        sha = _check_sha(sha256)
        return Path(self.root) / "sha256" / sha[:2] / sha[2:]

    def _meta_path(self, sha256: str) -> Path:
        blob = self.blob_path(sha256)
        return blob.with_name(blob.name + ".json")

    def _tmp_dir(self) -> Path:
        tmp = Path(self.root) / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"Cannot write to the artifact store {str(self.root)!r}: {exc.strerror or exc}. "
                f"Make it writable or set FLOTILLA_ARTIFACT_ROOT to a writable folder."
            ) from exc
        return tmp

    # -- put -------------------------------------------------------------------------------
    def put(self, path: Path) -> StoredArtifact:
        """Store a file or a folder; storing the same content again changes nothing.

        Raises:
            ArtifactNotFoundError: ``path`` does not exist.
            ArtifactError: ``path`` is neither a file nor a folder, or a folder holds links.
            StorageError: the store cannot be written.
        """
        src = Path(path)
        if src.is_dir():
            kind = "dir"
        elif src.is_file():
            kind = "file"
        elif not src.exists():
            raise ArtifactNotFoundError(
                f"The artifact {str(src)!r} does not exist. Check the path and try again."
            )
        else:
            raise ArtifactError(f"The artifact {str(src)!r} must be a regular file or a folder.")
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp_dir(), prefix="put-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                writer = HashingWriter(out)
                if kind == "dir":
                    write_tar(src, writer)
                else:
                    with src.open("rb") as fh:
                        while chunk := fh.read(_CHUNK):
                            writer.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            stored = StoredArtifact(writer.hexdigest(), writer.size, kind, src.resolve().name)
            blob = self.blob_path(stored.sha256)
            blob.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, blob)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._write_meta(stored)
        return stored

    def _write_meta(self, stored: StoredArtifact) -> None:
        meta = self._meta_path(stored.sha256)
        if meta.exists():
            return
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp_dir(), prefix="meta-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"kind": stored.kind, "filename": stored.filename, "size": stored.size}, out)
        os.replace(tmp_name, meta)

    # -- fetch -----------------------------------------------------------------------------
    def exists(self, sha256: str) -> bool:
        """Whether the blob of ``sha256`` is present (its bytes are checked on fetch)."""
        return self.blob_path(sha256).is_file()

    def fetch(
        self, sha256: str, *, label: str, kind: str | None = None, filename: str | None = None
    ) -> Path:
        """Verify the stored bytes and return a local path to the artifact.

        Files come back as ``named/<sha256>/<filename>`` (a hard link of the blob, or a copy),
        folders as ``unpacked/<sha256>/``, extracted once and re-verified on every fetch.

        Raises:
            ArtifactNotFoundError: the blob is missing (message names ``label`` and the path).
            ArtifactIntegrityError: the bytes' sha256 differs from ``sha256``.
            UnsafeArtifactError: a folder archive holds absolute paths, ``..`` or links.
        """
        blob = self.blob_path(sha256)
        if not blob.is_file():
            raise ArtifactNotFoundError(
                f"The artifact of {label} (sha256 {sha256}) is missing from the store: "
                f"{str(blob)!r} does not exist. Restore the artifact store from a backup or "
                f"re-register the version from the original file."
            )
        self._verify(blob, sha256, label=label)
        meta = self._read_meta(sha256)
        kind = kind or str(meta.get("kind") or "file")
        if kind not in KINDS:
            raise ConfigError(f"An artifact kind must be 'file' or 'dir'. Got {kind!r}.")
        if kind == "dir":
            return self._unpacked(blob, sha256, label=label)
        name = _check_filename(filename or str(meta.get("filename") or "artifact"))
        return self._named(blob, sha256, name)

    def _read_meta(self, sha256: str) -> dict[str, Any]:
        try:
            data = json.loads(self._meta_path(sha256).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _verify(self, blob: Path, sha256: str, *, label: str) -> None:
        actual = _sha256_file(blob)
        if actual != sha256:
            raise ArtifactIntegrityError(
                f"The artifact of {label} is damaged: its sha256 should be {sha256} but the "
                f"stored bytes at {str(blob)!r} hash to {actual}. It was not loaded. "
                f"Re-register the version from the original file (a new version number) and "
                f"point aliases and deployments at it."
            )

    def _named(self, blob: Path, sha256: str, filename: str) -> Path:
        target = Path(self.root) / "named" / sha256 / filename
        if target.is_file() and (os.path.samefile(target, blob) or _sha256_file(target) == sha256):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{filename}.{uuid.uuid4().hex}.tmp")
        try:
            try:
                os.link(blob, tmp)
            except OSError:
                shutil.copyfile(blob, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def _unpacked(self, blob: Path, sha256: str, *, label: str) -> Path:
        target = Path(self.root) / "unpacked" / sha256
        if target.is_dir() and tree_sha256(target) == sha256:
            return target
        staging = Path(tempfile.mkdtemp(dir=self._tmp_dir(), prefix="unpack-"))
        try:
            try:
                safe_extract(blob, staging, label=label)
            except (OSError, tarfile.TarError) as exc:
                raise ArtifactError(
                    f"The folder artifact of {label} cannot be extracted: {exc}. "
                    f"Re-register the version from the original folder."
                ) from exc
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # damaged or half-made: move it aside, then replace
                trash = self._tmp_dir() / f"trash-{uuid.uuid4().hex}"
                os.rename(target, trash)
                shutil.rmtree(trash, ignore_errors=True)
            try:
                os.rename(staging, target)
            except OSError:
                if not (target.is_dir() and tree_sha256(target) == sha256):
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target
