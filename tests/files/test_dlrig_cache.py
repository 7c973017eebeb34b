"""The host-side build cache tool: publish, verified restore, corruption, races, pruning."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.targets import serve_directory

TOOL = Path(__file__).resolve().parents[2] / "files" / "build_cache" / "dlrig_cache.py"
_spec = importlib.util.spec_from_file_location("dlrig_cache", TOOL)
assert _spec and _spec.loader
dc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dc)

KEY = "a" * 64


def _prefix(root: Path) -> Path:
    prefix = root / "opt" / "boost"
    (prefix / "lib").mkdir(parents=True)
    (prefix / "include/boost").mkdir(parents=True)
    (prefix / "lib/libboost_system.so.1.88.0").write_bytes(os.urandom(4096))
    (prefix / "lib/libboost_system.so").symlink_to("libboost_system.so.1.88.0")
    (prefix / "include/boost/version.hpp").write_text("#define BOOST_VERSION 108800\n")
    return prefix


def _restore(target: Path, *source: str) -> int:
    return dc.main(["restore", *source, "--name", "boost", "--key", KEY, "--prefix", str(target)])


def _tree(prefix: Path) -> dict:
    return {e["path"]: e for e in dc.file_list(prefix)}


def test_publish_then_restore_into_a_fresh_prefix(tmp_path):
    built = _prefix(tmp_path / "a")
    cache = tmp_path / "cache"
    manifest_path = dc.publish(cache, "boost", KEY, built, {"version": "1.88.0"})
    manifest = json.loads(manifest_path.read_text())
    assert manifest["inputs"] == {"version": "1.88.0"}
    assert (manifest_path.parent / manifest["tarball"]).stat().st_size == manifest["tarball_size"]

    target = tmp_path / "b" / "opt" / "boost"
    assert _restore(target, "--cache", str(cache)) == 0
    assert _tree(target) == _tree(built)
    assert os.readlink(target / "lib/libboost_system.so") == "libboost_system.so.1.88.0"


def test_restore_over_http(tmp_path):
    cache = tmp_path / "cache"
    built = _prefix(tmp_path / "a")
    dc.publish(cache, "boost", KEY, built, {})
    target = tmp_path / "b" / "boost"
    with serve_directory(cache) as url:
        assert _restore(target, "--url", url) == 0
    assert _tree(target) == _tree(built)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_artifact_is_a_miss_and_leaves_the_prefix_alone(tmp_path, damage, capsys):
    cache = tmp_path / "cache"
    manifest = json.loads(dc.publish(cache, "boost", KEY, _prefix(tmp_path / "a"), {}).read_text())
    tarball = cache / "boost" / KEY / manifest["tarball"]
    blob = bytearray(tarball.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    else:
        blob = blob[: len(blob) // 2]
    tarball.write_bytes(bytes(blob))
    target = tmp_path / "b" / "boost"
    target.mkdir(parents=True)
    (target / "old").write_text("previous install")

    code = _restore(target, "--cache", str(cache))

    assert code == dc.MISS
    assert (target / "old").read_text() == "previous install"
    assert sorted(p.name for p in target.parent.iterdir()) == ["boost"]
    reason = "corrupt" if damage == "flip" else "truncated"
    assert reason in capsys.readouterr().err


def test_miss_without_artifact_or_cache(tmp_path):
    args = ["restore", "--name", "boost", "--key", KEY, "--prefix", str(tmp_path / "p")]
    assert dc.main(args) == dc.MISS
    assert dc.main([*args, "--cache", str(tmp_path / "empty")]) == dc.MISS


def test_concurrent_publishers_leave_a_consistent_artifact(tmp_path):
    built = _prefix(tmp_path / "a")
    cache = tmp_path / "cache"
    cmd = [
        sys.executable,
        str(TOOL),
        "publish",
        "--cache",
        str(cache),
        "--name",
        "boost",
        "--key",
        KEY,
        "--prefix",
        str(built),
    ]
    publishers = [subprocess.Popen(cmd, stderr=subprocess.DEVNULL) for _ in range(6)]
    assert [p.wait(timeout=120) for p in publishers] == [0] * 6
    target = tmp_path / "b" / "boost"
    assert _restore(target, "--cache", str(cache)) == 0
    assert _tree(target) == _tree(built)
    assert not list((cache / "boost" / KEY).glob(".tmp-*"))


def test_unsafe_member_is_refused(tmp_path):
    import io
    import tarfile

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    manifest = {"files": [], "tarball_sha256": dc.sha256_file(evil)}
    with pytest.raises(dc.CacheError, match="unsafe path"):
        dc._swap_in(evil, manifest, tmp_path / "p")
    assert not (tmp_path / "escape").exists()


def _tarball(path, members) -> None:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
            else:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))


def test_member_written_through_an_archive_symlink_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = tmp_path / "evil.tar.gz"
    _tarball(evil, [("lib", "sym", str(outside)), ("lib/owned", "file", b"x")])
    manifest = {"files": [], "tarball_sha256": dc.sha256_file(evil)}
    with pytest.raises(dc.CacheError, match="under a symlink"):
        dc._swap_in(evil, manifest, tmp_path / "p")
    assert not (outside / "owned").exists() and not (tmp_path / "p").exists()


def test_member_twice_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    evil = tmp_path / "evil.tar.gz"
    _tarball(evil, [("a", "sym", str(outside / "x")), ("a", "file", b"x")])
    manifest = {"files": [], "tarball_sha256": dc.sha256_file(evil)}
    with pytest.raises(dc.CacheError, match="twice"):
        dc._swap_in(evil, manifest, tmp_path / "p")
    assert not (outside / "x").exists() and not (tmp_path / "p").exists()


def test_prune_by_size_removes_the_oldest_first(tmp_path):
    cache = tmp_path / "cache"
    built = _prefix(tmp_path / "a")
    for i, key in enumerate(("1" * 64, "2" * 64, "3" * 64)):
        path = dc.publish(cache, "boost", key, built, {})
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    one = dc.entries(cache)[0]["size"]
    removed = dc.prune(cache, None, (one * 2.5) / (1024 * 1024))
    assert [Path(r).name for r in removed] == ["1" * 64]
    assert dc.prune(cache, max_age_days=1, max_size_mb=None)  # all are decades old
    assert dc.entries(cache) == []


def test_auto_is_off_outside_colab(tmp_path):
    assert dc.resolve_dir("auto") is None or Path("/var/colab/hostname").exists()
    assert dc.resolve_dir("") is None
    assert dc.resolve_dir(str(tmp_path)) == tmp_path
