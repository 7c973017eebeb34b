"""e2e: checksummed dataset downloads from a loopback HTTP server into a real Debian root."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.e2e.targets import serve_directory

pytestmark = pytest.mark.e2e

DEPLOY = "deploys.datasets.datasets"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _make_files(site: Path) -> dict[str, Path]:
    site.mkdir()
    with zipfile.ZipFile(site / "images.zip", "w") as z:
        z.writestr("train/cat.txt", "meow\n")
        z.writestr("train/dog.txt", "woof\n")
    with tarfile.open(site / "labels.tar.gz", "w:gz") as t:
        body = b"0 cat\n1 dog\n"
        info = tarfile.TarInfo("labels/classes.txt")
        info.size = len(body)
        t.addfile(info, io.BytesIO(body))
    (site / "weights.bin.gz").write_bytes(gzip.compress(b"\x00\x01weights" * 100))
    (site / "readme.txt").write_text("plain file\n")
    return {p.name: p for p in site.iterdir()}


def _items(base: str, files: dict[str, Path]) -> list[dict[str, str]]:
    return [
        {
            "name": "images",
            "url": f"{base}/images.zip",
            "sha256": _sha(files["images.zip"]),
            "dest": "/data/images",
            "extract": "zip",
        },
        {
            "name": "labels",
            "url": f"{base}/labels.tar.gz",
            "sha256": _sha(files["labels.tar.gz"]),
            "dest": "/data/labels",
            "extract": "tar",
        },
        {
            "name": "weights",
            "url": f"{base}/weights.bin.gz",
            "sha256": _sha(files["weights.bin.gz"]).upper(),
            "dest": "/data/weights.bin",
            "extract": "gz",
        },
        {
            "name": "readme",
            "url": f"{base}/readme.txt",
            "sha256": _sha(files["readme.txt"]),
            "dest": "/data/nested/readme.txt",
        },
    ]


def test_datasets_download_verify_extract_and_skip(debian_root, tmp_path, converge):
    files = _make_files(tmp_path / "site")
    with serve_directory(tmp_path / "site") as base:
        items = _items(base, files)
        converge(debian_root, DEPLOY, {"datasets_items": items})

        root = debian_root.root.path
        assert (root / "data/images/train/cat.txt").read_text() == "meow\n"
        assert (root / "data/labels/labels/classes.txt").read_text() == "0 cat\n1 dog\n"
        assert (root / "data/weights.bin").read_bytes() == b"\x00\x01weights" * 100
        assert (root / "data/nested/readme.txt").read_text() == "plain file\n"
        marker = root / "data/.images.dlrig-dataset"
        assert marker.read_text() == f"sha256={items[0]['sha256']}\nextract=zip\n"
        assert not list((root / "data").glob(".dlrig-dl-*")), "temporary download left behind"

        # The marker, not the file's existence, decides: a dest that vanished comes back ...
        debian_root.root.run("rm -rf /data/images")
        # ... and a stale marker (another sha256) forces a fresh download over the old file.
        stale = "sha256=" + "0" * 64 + "\nextract=none\n"
        (root / "data/nested/.readme.txt.dlrig-dataset").write_text(stale)
        (root / "data/nested/readme.txt").write_text("tampered\n")
        first, _ = converge(debian_root, DEPLOY, {"datasets_items": items})
        assert sorted(first.changed) == [
            "Download datasets | Dataset images at /data/images",
            "Download datasets | Dataset readme at /data/nested/readme.txt",
        ]
        assert (root / "data/images/train/dog.txt").read_text() == "woof\n"
        assert (root / "data/nested/readme.txt").read_text() == "plain file\n"


def test_dataset_bad_data_and_wrong_sha256_fail_leaving_nothing(debian_root, tmp_path, run_pyinfra):
    # A malformed entry is refused before any operation runs.
    bad = {"name": "x", "url": "ftp://nope", "sha256": "0" * 64, "dest": "/data/x"}
    run = run_pyinfra(debian_root, DEPLOY, {"datasets_items": [bad]})
    assert run.returncode != 0
    assert "datasets_items[0] (x): 'url'" in run.output
    assert not (debian_root.root.path / "usr/local/lib/dlrig").exists()

    files = _make_files(tmp_path / "site")
    with serve_directory(tmp_path / "site") as base:
        item = _items(base, files)[0]
        item["sha256"] = hashlib.sha256(b"something else").hexdigest()
        run = run_pyinfra(debian_root, DEPLOY, {"datasets_items": [item]})
    assert run.returncode != 0
    assert "sha256 mismatch" in run.output
    data_dir = debian_root.root.path / "data"
    assert not (data_dir / "images").exists()
    assert not (data_dir / ".images.dlrig-dataset").exists()
    assert list(data_dir.iterdir()) == [], "download leftovers in the destination's parent"
