#!/usr/bin/env python3
"""dlrig build cache: restore a build's installed prefix by its build key, or publish it.

Runs on the target host (standard library only), called by the build scripts of the Boost and
Caffe deploys. A cache is a directory (local, on a mounted Google Drive, on a shared disk) and/or
a read-only URL (``http(s)://`` or ``file://``) with the same layout::

    <cache>/<name>/<key>/manifest.json          written last: its presence means "complete"
    <cache>/<name>/<key>/<tar sha256>.tar.gz     the installed prefix, compressed

The manifest holds the key inputs in clear, the tarball's name, sha256 and size, every file
with its sha256 and size, when and by which dlrig it was made. The tarball is named by its own
checksum, so two hosts publishing the same key at once each rename complete files into place
and whichever manifest lands last points at a tarball that exists and matches it.

Restore verifies the tarball's checksum, unpacks into a staging directory beside the prefix,
verifies every file against the manifest, then swaps the staging tree in with renames. A
corrupt or truncated artifact is reported and ignored (exit 3: build instead); nothing is
ever half-unpacked into the prefix.

    dlrig_cache.py restore --cache DIR --url URL --name boost --key KEY --prefix /opt/dlrig/boost
    dlrig_cache.py publish --cache DIR --name boost --key KEY --prefix PREFIX --inputs JSON
    dlrig_cache.py list --cache DIR [--url URL]
    dlrig_cache.py prune --cache DIR [--max-age-days N] [--max-size-mb N]

Exit codes: 0 done, 3 miss (nothing usable in the cache), 2 usage or I/O error.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import os
import posixpath
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMAT = 1
DLRIG_VERSION = "0.1.0"
AUTO = "auto"
COLAB_DRIVE = Path("/content/drive/MyDrive")
MISS = 3


def log(message: str) -> None:
    print(f"build cache: {message}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_dir(cache: str) -> Path | None:
    """The cache directory to use: ``auto`` means a Drive folder on hosted Colab when mounted."""
    if not cache:
        return None
    if cache == AUTO:
        if COLAB_DRIVE.is_dir() and Path("/var/colab/hostname").exists():
            return COLAB_DRIVE / "dlrig-cache"
        return None
    return Path(cache)


def file_list(prefix: Path) -> list[dict[str, Any]]:
    """Every regular file and symlink under ``prefix``: path, sha256 (files), size, link target."""
    entries = []
    for path in sorted(prefix.rglob("*")):
        rel = path.relative_to(prefix).as_posix()
        if path.is_symlink():
            entries.append({"path": rel, "link": os.readlink(path)})
        elif path.is_file():
            entries.append({"path": rel, "sha256": sha256_file(path), "size": path.stat().st_size})
    return entries


# --- publish ---------------------------------------------------------------------------------


def publish(cache: Path, name: str, key: str, prefix: Path, inputs: dict[str, Any]) -> Path:
    """Write ``prefix`` as the artifact of ``key``; return the manifest path."""
    target = cache / name / key
    target.mkdir(parents=True, exist_ok=True)
    tag = f"{socket.gethostname()}-{os.getpid()}"
    tmp_tar = target / f".tmp-{tag}.tar.gz"
    try:
        with tarfile.open(tmp_tar, "w:gz", compresslevel=6) as tar:
            for entry in sorted(prefix.iterdir()):
                tar.add(entry, arcname=entry.name)
        tar_sha = sha256_file(tmp_tar)
        final_tar = target / f"{tar_sha}.tar.gz"
        os.replace(tmp_tar, final_tar)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_tar.unlink()
    manifest = {
        "format": FORMAT,
        "name": name,
        "build_key": key,
        "inputs": inputs,
        "tarball": final_tar.name,
        "tarball_sha256": tar_sha,
        "tarball_size": final_tar.stat().st_size,
        "files": file_list(prefix),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "created_by": socket.gethostname(),
        "dlrig_version": DLRIG_VERSION,
    }
    tmp_manifest = target / f".tmp-{tag}.manifest.json"
    tmp_manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_manifest, target / "manifest.json")
    log(f"published {name} {key[:12]} ({manifest['tarball_size']} bytes) to {target}")
    return target / "manifest.json"


# --- restore ---------------------------------------------------------------------------------


class CacheError(Exception):
    """An artifact that cannot be used (absent, corrupt, truncated)."""


@contextlib.contextmanager
def _fetch(source: str, rel: str, work: Path) -> Iterator[Path]:
    """Yield a local path of ``rel`` from a cache dir or URL (downloaded into ``work``)."""
    if "://" not in source or source.startswith("file://"):
        path = Path(source.removeprefix("file://")) / rel
        if not path.is_file():
            raise CacheError(f"{rel} not in the cache")
        yield path
        return
    dest = work / Path(rel).name
    url = source.rstrip("/") + "/" + rel
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as f:
            shutil.copyfileobj(response, f)
    except urllib.error.HTTPError as e:
        raise CacheError(f"{url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        raise CacheError(f"{url}: {e}") from None
    yield dest


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's members, when every one stays inside the directory it is extracted into.

    Refused: absolute names, ``..`` components, hard links to such names, device files, and
    any member under a symlink of the archive (writing through it could land anywhere). By
    name only: no file system lookups per member (an installed Boost is ~17,000 members).
    """
    members = tar.getmembers()
    links = {posixpath.normpath(m.name) for m in members if m.issym()}
    for member in members:
        for name in (member.name, member.linkname if member.islnk() else ""):
            norm = posixpath.normpath(name) if name else ""
            if norm.startswith("/") or norm == ".." or norm.startswith("../"):
                raise CacheError(f"unsafe path in artifact: {member.name}")
        if member.isdev():
            raise CacheError(f"device file in artifact: {member.name}")
        parent = posixpath.dirname(posixpath.normpath(member.name))
        while parent not in ("", "."):
            if parent in links:
                raise CacheError(f"unsafe path in artifact: {member.name} (under a symlink)")
            parent = posixpath.dirname(parent)
    return members


def _extract_verified(
    tar: tarfile.TarFile, members: list[tarfile.TarInfo], tree: Path, manifest: dict[str, Any]
) -> None:
    """Extract ``members`` into the new directory ``tree``, hashing each file as it is written,
    and check the result against the manifest: no file missing, none extra, same contents.

    One pass: every file is created and hashed once (reading ~17,000 Boost headers back to
    hash them took as long as writing them). No owner or time stamps are restored.
    """
    expected = {e["path"]: e for e in manifest["files"]}
    found: dict[str, dict[str, Any]] = {}
    dirs: list[tuple[Path, int]] = []
    tree.mkdir()
    for member in members:
        rel = posixpath.normpath(member.name)
        if rel == ".":
            continue
        dest = tree / rel
        if member.isdir():
            dest.mkdir(parents=True, exist_ok=True)
            dirs.append((dest, member.mode & 0o777))
            continue
        if os.path.lexists(dest):
            raise CacheError(f"artifact holds {member.name} twice")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if member.issym():
            os.symlink(member.linkname, dest)
            found[rel] = {"path": rel, "link": member.linkname}
        elif member.islnk():
            target = posixpath.normpath(member.linkname)
            if target not in found or "sha256" not in found[target]:
                raise CacheError(f"hard link {member.name} to a file not in the artifact")
            os.link(tree / target, dest)
            found[rel] = {**found[target], "path": rel}
        elif member.isfile():
            digest, size = hashlib.sha256(), 0
            src = tar.extractfile(member)
            if src is None:
                raise CacheError(f"unreadable member in artifact: {member.name}")
            with src, open(dest, "xb") as dst:
                while block := src.read(1 << 20):
                    digest.update(block)
                    dst.write(block)
                    size += len(block)
            os.chmod(dest, member.mode & 0o777)
            found[rel] = {"path": rel, "sha256": digest.hexdigest(), "size": size}
        else:
            raise CacheError(f"unsupported member type in artifact: {member.name}")
    for directory, mode in reversed(dirs):
        os.chmod(directory, mode)
    if set(expected) != set(found):
        missing = sorted(set(expected) - set(found))[:5]
        extra = sorted(set(found) - set(expected))[:5]
        raise CacheError(
            f"unpacked files differ from the manifest (missing {missing}, extra {extra})"
        )
    for path, entry in expected.items():
        if entry != found[path]:
            raise CacheError(f"{path} differs from the manifest")


def restore(sources: list[str], name: str, key: str, prefix: Path) -> str:
    """Restore ``key`` into ``prefix`` from the first source that has a good artifact.

    Returns the source used. Raises CacheError (with every source's reason) on a miss.
    """
    reasons = []
    for source in sources:
        try:
            with tempfile.TemporaryDirectory(prefix="dlrig-cache-") as tmp:
                work = Path(tmp)
                with _fetch(source, f"{name}/{key}/manifest.json", work) as mpath:
                    manifest = json.loads(mpath.read_text())
                if manifest.get("build_key") != key or manifest.get("format") != FORMAT:
                    raise CacheError("manifest is for another key or format")
                rel = f"{name}/{key}/{manifest['tarball']}"
                with _fetch(source, rel, work) as tpath:
                    size = tpath.stat().st_size
                    if size != manifest["tarball_size"]:
                        raise CacheError(
                            f"tarball is {size} bytes, manifest says {manifest['tarball_size']}"
                            " (truncated?)"
                        )
                    if sha256_file(tpath) != manifest["tarball_sha256"]:
                        raise CacheError("tarball checksum does not match the manifest (corrupt)")
                    _swap_in(tpath, manifest, prefix)
            log(f"restored {name} {key[:12]} from {source}")
            return source
        except CacheError as e:
            reasons.append(f"{source}: {e}")
            log(f"not using {source}: {e}")
        except (OSError, ValueError, KeyError, tarfile.TarError) as e:
            reasons.append(f"{source}: unreadable artifact: {e}")
            log(f"not using {source}: unreadable artifact: {e}")
    raise CacheError("; ".join(reasons) or "no cache configured")


def _swap_in(tarball: Path, manifest: dict[str, Any], prefix: Path) -> None:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.restore-", dir=prefix.parent))
    try:
        # Decompressed once into a plain tar first: tarfile reads a gzip stream in small
        # pieces, and seeks in it for every member.
        plain = staging / ".dlrig-artifact.tar"
        with gzip.open(tarball, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        tree = staging / "tree"
        with tarfile.open(plain, "r:") as tar:
            _extract_verified(tar, _safe_members(tar), tree, manifest)
        plain.unlink()
        tree.chmod(0o755)
        old = prefix.parent / f".{prefix.name}.old-{os.getpid()}"
        if prefix.exists():
            os.rename(prefix, old)
        os.rename(tree, prefix)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- list / prune ----------------------------------------------------------------------------


def entries(cache: Path) -> list[dict[str, Any]]:
    """Every complete artifact in a cache directory."""
    out = []
    for manifest_path in sorted(cache.glob("*/*/manifest.json")):
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            continue
        out.append(
            {
                "name": manifest.get("name"),
                "build_key": manifest.get("build_key"),
                "size": manifest.get("tarball_size", 0),
                "created_at": manifest.get("created_at"),
                "mtime": manifest_path.stat().st_mtime,
                "dir": str(manifest_path.parent),
            }
        )
    return out


def prune(cache: Path, max_age_days: float | None, max_size_mb: float | None) -> list[str]:
    """Remove artifacts older than ``max_age_days``, then the oldest until under ``max_size_mb``."""
    removed = []
    items = sorted(entries(cache), key=lambda e: e["mtime"])
    now = time.time()
    if max_age_days is not None:
        for item in list(items):
            if now - item["mtime"] > max_age_days * 86400:
                shutil.rmtree(item["dir"], ignore_errors=True)
                removed.append(item["dir"])
                items.remove(item)
    if max_size_mb is not None:
        while items and sum(i["size"] for i in items) > max_size_mb * 1024 * 1024:
            item = items.pop(0)
            shutil.rmtree(item["dir"], ignore_errors=True)
            removed.append(item["dir"])
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="dlrig build cache")
    parser.add_argument("command", choices=("restore", "publish", "list", "prune"))
    parser.add_argument("--cache", default="", help="cache directory on this host, or 'auto'")
    parser.add_argument("--url", default="", help="read-only cache URL (http(s):// or file://)")
    parser.add_argument("--name")
    parser.add_argument("--key")
    parser.add_argument("--prefix", type=Path)
    parser.add_argument("--inputs", default="{}")
    parser.add_argument("--max-age-days", type=float)
    parser.add_argument("--max-size-mb", type=float)
    args = parser.parse_args(argv)
    cache = resolve_dir(args.cache)

    if args.command == "restore":
        sources = [str(s) for s in (cache, args.url) if s]
        if not sources:
            return MISS
        try:
            restore(sources, args.name, args.key, args.prefix)
        except CacheError:
            return MISS
        return 0
    if args.command == "publish":
        if cache is None:
            return 0
        try:
            publish(cache, args.name, args.key, args.prefix, json.loads(args.inputs))
        except OSError as e:
            # A full or read-only cache must not fail a build that succeeded.
            log(f"could not publish to {cache}: {e}")
        return 0
    if args.command == "list":
        listing = entries(cache) if cache and cache.is_dir() else []
        print(json.dumps(listing, indent=2, sort_keys=True))
        return 0
    if cache is None or not cache.is_dir():
        return 0
    for path in prune(cache, args.max_age_days, args.max_size_mb):
        print(f"removed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
