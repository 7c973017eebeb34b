"""Download one dataset, verify its sha256, unpack it into place; dlrig uploads and runs this.

Usage: python3 fetch.py URL SHA256 DEST EXTRACT MARKER

Everything happens in a temporary directory next to DEST (same file system, so the final
rename is atomic). A wrong sha256 removes the download and exits 1 with DEST untouched. The
marker (verified sha256 + extraction kind) is written last, so an interrupted run is never
taken for a finished one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile

CHUNK = 1 << 20


def download(url: str, path: str) -> str:
    """Fetch ``url`` into ``path`` (3 tries); return the sha256 of what was written."""
    for attempt in range(3):
        try:
            digest = hashlib.sha256()
            with urllib.request.urlopen(url, timeout=60) as response, open(path, "wb") as out:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            return digest.hexdigest()
        except OSError as e:
            if attempt == 2:
                raise SystemExit(f"download of {url} failed: {e}") from None
            time.sleep(2 * (attempt + 1))
    raise AssertionError("unreachable")


def _inside(root: str, name: str) -> bool:
    target = os.path.realpath(os.path.join(root, name))
    return target == os.path.realpath(root) or target.startswith(os.path.realpath(root) + os.sep)


def extract_tar(archive: str, out: str) -> None:
    with tarfile.open(archive) as tar:  # compression detected from the data
        if hasattr(tarfile, "data_filter"):
            tar.extractall(out, filter="data")
            return
        for member in tar.getmembers():  # Pythons without tar filters: refuse what is unsafe
            unsafe = member.issym() or member.islnk() or member.isdev()
            if unsafe or not _inside(out, member.name):
                raise SystemExit(f"refusing tar member {member.name!r} (link, device or outside)")
        tar.extractall(out)


def unpack(kind: str, download_path: str, out: str) -> None:
    """Put the verified download at ``out``: a directory (zip, tar) or a file (gz, none)."""
    if kind == "zip":
        os.mkdir(out)
        with zipfile.ZipFile(download_path) as archive:
            archive.extractall(out)  # zipfile drops absolute paths and '..' parts
    elif kind == "tar":
        os.mkdir(out)
        extract_tar(download_path, out)
    elif kind == "gz":
        with gzip.open(download_path, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
    elif kind == "none":
        os.rename(download_path, out)
    else:
        raise SystemExit(f"unknown extract kind {kind!r}")


def remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def main(url: str, sha256: str, dest: str, kind: str, marker: str) -> int:
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".dlrig-dl-", dir=parent)
    try:
        download_path = os.path.join(work, "download")
        got = download(url, download_path)
        if got != sha256:
            print(
                f"sha256 mismatch for {url}: expected {sha256}, got {got}; nothing written "
                f"to {dest}",
                file=sys.stderr,
            )
            return 1
        out = os.path.join(work, "out")
        unpack(kind, download_path, out)
        os.chmod(out, 0o755 if os.path.isdir(out) else 0o644)
        remove(marker)  # from here on the old dataset is no longer "done"
        remove(dest)
        os.rename(out, dest)
        tmp_marker = os.path.join(work, "marker")
        with open(tmp_marker, "w") as f:
            f.write(f"sha256={sha256}\nextract={kind}\n")
        os.rename(tmp_marker, marker)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        raise SystemExit(__doc__)
    sys.exit(main(*sys.argv[1:]))
