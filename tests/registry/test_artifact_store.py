"""The content-addressed artifact store: round trips, integrity, safety."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from flotilla.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactNotFoundError,
    ConfigError,
    UnsafeArtifactError,
)
from flotilla.registry import ArtifactStore, LocalArtifactStore


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


def _model_dir(root: Path, *, stamp: int = 1_000_000) -> Path:
    (root / "sub" / "empty").mkdir(parents=True)
    (root / "model.json").write_text('{"a": 1}')
    (root / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 10)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    for p in root.rglob("*"):
        os.utime(p, (stamp, stamp))
    return root


def test_is_an_artifact_store(store: LocalArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)


def test_file_round_trip_keeps_suffix_and_is_idempotent(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(b"\x00onnx\xff" * 1000)
    first = store.put(src)
    again = store.put(src)
    assert first == again
    assert (first.kind, first.filename, first.size) == ("file", "model.onnx", 6000)
    assert store.exists(first.sha256) and not store.exists("1" * 64)
    blob = store.blob_path(first.sha256)
    assert blob.parent.name == first.sha256[:2] and blob.name == first.sha256[2:]
    assert len(list(blob.parent.iterdir())) == 2  # the blob and its description
    fetched = store.fetch(first.sha256, label="churn@1")
    assert fetched.name == "model.onnx" and fetched.read_bytes() == src.read_bytes()
    assert store.fetch(first.sha256, label="churn@1", filename="other.txt").name == "other.txt"
    assert not list((tmp_path / "artifacts" / "tmp").iterdir())


def test_folder_is_stored_as_a_reproducible_tar(store: LocalArtifactStore, tmp_path: Path) -> None:
    one = store.put(_model_dir(tmp_path / "a" / "model", stamp=1_000_000))
    two = store.put(_model_dir(tmp_path / "b" / "model", stamp=2_000_000))
    assert one.sha256 == two.sha256
    assert (one.kind, one.filename) == ("dir", "model")
    out = store.fetch(one.sha256, label="recs@2")
    assert out.is_dir() and out.name == one.sha256
    assert (out / "model.json").read_text() == '{"a": 1}'
    assert (out / "sub" / "weights.bin").read_bytes() == bytes(range(256)) * 10
    assert (out / "sub" / "empty").is_dir()
    assert os.access(out / "run.sh", os.X_OK)
    (out / "model.json").write_text("tampered")  # the unpacked copy is re-verified
    again = store.fetch(one.sha256, label="recs@2")
    assert (again / "model.json").read_text() == '{"a": 1}'


def test_tampered_blob_names_label_and_both_hashes(
    store: LocalArtifactStore, tmp_path: Path
) -> None:
    src = tmp_path / "model.txt"
    src.write_bytes(b"tree model dump")
    art = store.put(src)
    blob = store.blob_path(art.sha256)
    data = bytearray(blob.read_bytes())
    data[3] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError) as info:
        store.fetch(art.sha256, label="churn@3")
    message = str(info.value)
    actual = hashlib.sha256(bytes(data)).hexdigest()
    assert "churn@3" in message and art.sha256 in message and actual in message
    assert "Re-register" in message


def test_tampered_named_copy_is_replaced(store: LocalArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("x = 1\n")
    art = store.put(src)
    named = store.fetch(art.sha256, label="p@1")
    named.unlink()
    named.write_text("x = 2\n")  # a different file in its place
    assert store.fetch(art.sha256, label="p@1").read_text() == "x = 1\n"


def test_missing_blob_names_label_and_path(store: LocalArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "m.skops"
    src.write_bytes(b"abc")
    art = store.put(src)
    store.blob_path(art.sha256).unlink()
    with pytest.raises(ArtifactNotFoundError) as info:
        store.fetch(art.sha256, label="churn@4")
    assert "churn@4" in str(info.value) and str(store.blob_path(art.sha256)) in str(info.value)


def test_bad_inputs(store: LocalArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        store.put(tmp_path / "nope.onnx")
    with pytest.raises(ConfigError, match="64 lowercase hex"):
        store.fetch("xyz", label="a@1")
    src = tmp_path / "m.onnx"
    src.write_bytes(b"1")
    art = store.put(src)
    with pytest.raises(ConfigError, match="plain base name"):
        store.fetch(art.sha256, label="a@1", filename="../evil.onnx")


def test_links_in_a_folder_are_refused(store: LocalArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "link").symlink_to("/etc/hostname")
    with pytest.raises(ArtifactError, match="link"):
        store.put(folder)
    assert not list((tmp_path / "artifacts" / "tmp").iterdir())


def _plant_tar(store: LocalArtifactStore, members: list[tuple[tarfile.TarInfo, bytes]]) -> str:
    """Put a hand-made (hostile) tar into the store as a folder artifact."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    raw = buf.getvalue()
    sha = hashlib.sha256(raw).hexdigest()
    blob = store.blob_path(sha)
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(raw)
    blob.with_name(blob.name + ".json").write_text(json.dumps({"kind": "dir", "filename": "m"}))
    return sha


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info, b""


@pytest.mark.parametrize(
    "member",
    [
        _file("../escape.txt", b"x"),
        _file("/abs/escape.txt", b"x"),
        _file("ok/../../escape.txt", b"x"),
        _link("evil", "/etc/passwd"),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink"],
)
def test_unsafe_tar_is_refused_and_nothing_is_written(
    store: LocalArtifactStore, tmp_path: Path, member: tuple[tarfile.TarInfo, bytes]
) -> None:
    sha = _plant_tar(store, [_file("fine.txt", b"ok"), member])
    with pytest.raises(UnsafeArtifactError, match="recs@1"):
        store.fetch(sha, label="recs@1")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "artifacts" / "unpacked" / sha).exists()
