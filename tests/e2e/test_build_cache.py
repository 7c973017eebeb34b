"""e2e: host A builds Boost and publishes it; fresh host B restores it without compiling.

Both roots share one cache directory on this machine, bind-mounted at the same path in each
(a shared disk, or a Drive folder, stands in). Boost is built with one library to keep CI
inside its budget; the artifact path is the same for any library set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e import targets
from tests.e2e.test_boost import APT_ARCHIVES, DEPLOY, LOG, PREFIX, boost_archive  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.build]

CACHE_IN_ROOT = "/srv/dlrig-cache"


def _host(root: targets.Root, cache: Path) -> targets.Target:
    APT_ARCHIVES.mkdir(parents=True, exist_ok=True)
    root.bind(str(APT_ARCHIVES), "/var/cache/apt/archives", read_only=False)
    root.bind(str(cache), CACHE_IN_ROOT, read_only=False)
    return targets.chroot_target(root)


def _data(archive) -> dict:
    url, digest = archive
    return {
        "boost_url": url,
        "boost_sha256": digest,
        "boost_libraries": ["system"],
        "build_cache_dir": CACHE_IN_ROOT,
    }


def _tree(target: targets.Target) -> dict[str, int]:
    prefix = target.root.path / PREFIX.lstrip("/")
    return {
        str(p.relative_to(prefix)): p.stat().st_size
        for p in sorted(prefix.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _compiled(target: targets.Target) -> bool:
    log = target.root.path / LOG.lstrip("/")
    return log.exists() and "building with b2" in log.read_text()


def test_second_host_restores_instead_of_compiling(boost_archive, converge, tmp_path):  # noqa: F811
    cache = tmp_path / "cache"
    cache.mkdir()
    data = _data(boost_archive)
    with targets.fresh_root() as root_a, targets.fresh_root() as root_b:
        host_a, host_b = _host(root_a, cache), _host(root_b, cache)

        converge(host_a, DEPLOY, data)
        assert _compiled(host_a)
        (manifest_path,) = cache.glob("boost/*/manifest.json")
        manifest = json.loads(manifest_path.read_text())
        assert manifest["inputs"]["libraries"] == ["system"]
        recorded = json.loads(
            (root_a.path / PREFIX.lstrip("/") / ".dlrig-build-key.json").read_text()
        )
        assert manifest["build_key"] == recorded["build_key"]

        first_b, _ = converge(host_b, DEPLOY, data)
        assert not _compiled(host_b), "host B compiled although the cache had its artifact"
        assert "restored from the build cache" in (root_b.path / LOG.lstrip("/")).read_text()
        assert not (root_b.path / "var/tmp/dlrig-boost-build").exists()
        tree = _tree(host_a)
        assert _tree(host_b) == tree
        key_b = json.loads((root_b.path / PREFIX.lstrip("/") / ".dlrig-build-key.json").read_text())
        assert key_b["build_key"] == recorded["build_key"]
        assert "libboost_system.so" in root_b.run("/sbin/ldconfig -p").stdout
        assert any(name.startswith("Install Boost | Build Boost") for name in first_b.changed)

        # A corrupted artifact: a third fresh host rebuilds and says why.
        tarball = manifest_path.parent / manifest["tarball"]
        blob = bytearray(tarball.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        tarball.write_bytes(bytes(blob))
    with targets.fresh_root() as root_c:
        host_c = _host(root_c, cache)
        run, _ = converge(host_c, DEPLOY, data)
        assert _compiled(host_c)
        assert (
            "checksum does not match the manifest (corrupt)"
            in run.output + (root_c.path / LOG.lstrip("/")).read_text()
        )
        assert _tree(host_c) == tree
