"""e2e: a fleet sharing one build cache builds Boost once; a corrupt artifact is rebuilt.

Three SSH hosts (user ``dlrig`` + sudo, host keys checked) share one cache directory, bind-mounted
at the same path in each root (a shared disk or NFS mount stands in), with
``build_cache_shared``: in one pyinfra run the first host builds and publishes, the other two
restore its artifact without compiling. Then the artifact is corrupted and a fresh host
rebuilds, saying why. Boost is built with one library to keep CI inside its budget; the
artifact path is the same for any library set.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import targets
from tests.e2e.test_boost import APT_ARCHIVES, DEPLOY, LOG, PREFIX, boost_archive  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.build]

CACHE_IN_ROOT = "/srv/dlrig-cache"
SHARING_HOSTS = 3


def _link_debs(source: Path, dest: Path) -> None:
    """Hard-link (else copy) the .deb files of ``source`` missing from ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for deb in source.glob("*.deb"):
        if not (dest / deb.name).exists():
            try:
                os.link(deb, dest / deb.name)
            except OSError:
                shutil.copy2(deb, dest / deb.name)


@contextlib.contextmanager
def _prepared(root: targets.Root, cache: Path) -> Iterator[None]:
    """The shared cache bind-mounted; the cached .debs in the root's own APT archive (hosts
    installing at once would contend for one archive's lock), new ones kept afterwards."""
    APT_ARCHIVES.mkdir(parents=True, exist_ok=True)
    archives = root.path / "var/cache/apt/archives"
    _link_debs(APT_ARCHIVES, archives)
    root.bind(str(cache), CACHE_IN_ROOT, read_only=False)
    try:
        yield
    finally:
        _link_debs(archives, APT_ARCHIVES)


def _data(archive) -> dict:
    url, digest = archive
    return {
        "boost_url": url,
        "boost_sha256": digest,
        "boost_libraries": ["system"],
        "build_cache_dir": CACHE_IN_ROOT,
        "build_cache_shared": True,
        "pip_stack_venv": None,
    }


def _tree(target: targets.Target) -> dict[str, int]:
    prefix = target.root.path / PREFIX.lstrip("/")
    return {
        str(p.relative_to(prefix)): p.stat().st_size
        for p in sorted(prefix.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _log(target: targets.Target) -> str:
    log = target.root.path / LOG.lstrip("/")
    return log.read_text() if log.exists() else ""


def _compiled(target: targets.Target) -> bool:
    return "building with b2" in _log(target)


def _recorded_key(target: targets.Target) -> str:
    path = target.root.path / PREFIX.lstrip("/") / ".dlrig-build-key.json"
    return json.loads(path.read_text())["build_key"]


def test_fleet_builds_once_and_restores_elsewhere(boost_archive, converge, tmp_path):  # noqa: F811
    cache = tmp_path / "cache"
    cache.mkdir()
    data = _data(boost_archive)
    with contextlib.ExitStack() as stack:
        hosts = []
        for i in range(SHARING_HOSTS):
            root = stack.enter_context(targets.fresh_root())
            stack.enter_context(_prepared(root, cache))
            workdir = tmp_path / f"host{i}"
            workdir.mkdir()
            hosts.append(stack.enter_context(targets.ssh_target(root, workdir)))

        # One run: the inventory's first host builds first, the others restore its artifact.
        first, _ = converge(hosts, DEPLOY, data)
        builder, *others = hosts
        assert _compiled(builder)
        assert any(n.endswith("first, for the shared build cache") for n in first.changed)
        (manifest_path,) = cache.glob("boost/*/manifest.json")
        manifest = json.loads(manifest_path.read_text())
        assert manifest["inputs"]["libraries"] == ["system"]
        assert manifest["build_key"] == _recorded_key(builder)
        tree = _tree(builder)
        for other in others:
            assert not _compiled(other), f"{other.name} compiled although the cache had it"
            assert "restored from the build cache" in _log(other)
            assert not (other.root.path / "var/tmp/dlrig-boost-build").exists()
            assert _tree(other) == tree
            assert _recorded_key(other) == manifest["build_key"]
            assert "libboost_system.so" in other.root.run("/sbin/ldconfig -p").stdout
            # The prefix is root's (written through sudo), not the login user's.
            assert (other.root.path / PREFIX.lstrip("/") / "lib").stat().st_uid == 0

        # A corrupted artifact: a fresh host rebuilds and says why.
        tarball = manifest_path.parent / manifest["tarball"]
        blob = bytearray(tarball.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        tarball.write_bytes(bytes(blob))

    with targets.fresh_root() as root_c, _prepared(root_c, cache):
        host_c = targets.chroot_target(root_c)
        run, _ = converge(host_c, DEPLOY, data)
        assert _compiled(host_c)
        assert "checksum does not match the manifest (corrupt)" in run.output + _log(host_c)
        assert _tree(host_c) == tree
