"""A real signed APT repository for tests: a test OpenPGP key, small packages, Release signed.

It stands in for third-party repositories (vendor repos, Launchpad PPAs): served over loopback
HTTP, the deploys under test add its keyring and source, update and install from it for real.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.targets import sh

SUITE = "stable"
COMPONENT = "main"


@dataclass
class SignedRepo:
    """A built repository: serve ``root``; trust ``key`` (armored) with ``fingerprint``."""

    root: Path
    key: Path
    fingerprint: str
    suite: str = SUITE
    component: str = COMPONENT


def _gpg(home: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return sh(["gpg", "--homedir", str(home), "--batch", "--yes", *args], **kw)


def make_key(workdir: Path, name: str = "dlrig test repo") -> tuple[Path, str, Path]:
    """Make an ed25519 signing key; return (gnupg home, fingerprint, armored public key)."""
    home = workdir / "gnupg"
    home.mkdir(mode=0o700)
    _gpg(
        home,
        "--passphrase",
        "",
        "--quick-gen-key",
        f"{name} <test@dlrig.invalid>",
        "ed25519",
        "sign",
        "never",
    )
    colons = _gpg(home, "--with-colons", "--list-keys").stdout
    fingerprint = next(
        line.split(":")[9] for line in colons.splitlines() if line.startswith("fpr:")
    )
    key = workdir / "key.asc"
    key.write_text(_gpg(home, "--armor", "--export", fingerprint).stdout)
    return home, fingerprint, key


def build_package(
    workdir: Path,
    name: str,
    version: str = "1.0",
    body: str = "",
    files: dict[str, tuple[str, int]] | None = None,
) -> Path:
    """Build a tiny arch-all .deb that installs /usr/share/<name>/README (and runs nothing).

    + files: extra files to ship, absolute path -> (content, mode), e.g. a stand-in binary
    """
    tree = workdir / f"{name}_{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: dlrig tests <test@dlrig.invalid>\n"
        f"Description: {name} test package for dlrig\n"
    )
    doc = tree / "usr/share" / name
    doc.mkdir(parents=True)
    (doc / "README").write_text(body or f"{name} {version}\n")
    for path, (content, mode) in (files or {}).items():
        target = tree / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(mode)
    deb = workdir / f"{name}_{version}_all.deb"
    sh(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)])
    return deb


def build_signed_repo(
    workdir: Path,
    packages: dict[str, str],
    files: dict[str, dict[str, tuple[str, int]]] | None = None,
) -> SignedRepo:
    """Build ``dists/stable/main`` with ``packages`` (name → version), InRelease signed.

    + files: per package, extra files it ships (see ``build_package``)
    """
    workdir.mkdir(parents=True, exist_ok=True)
    home, fingerprint, key = make_key(workdir)
    root = workdir / "repo"
    pool = root / "pool"
    pool.mkdir(parents=True)
    for name, version in packages.items():
        deb = build_package(workdir, name, version, files=(files or {}).get(name))
        deb.rename(pool / deb.name)
    dist = root / "dists" / SUITE
    for arch in ("amd64", "all"):
        bindir = dist / COMPONENT / f"binary-{arch}"
        bindir.mkdir(parents=True)
        index = sh(["apt-ftparchive", "packages", "pool"], cwd=root).stdout
        (bindir / "Packages").write_text(index)
    release = sh(
        [
            "apt-ftparchive",
            "-o",
            f"APT::FTPArchive::Release::Suite={SUITE}",
            "-o",
            f"APT::FTPArchive::Release::Codename={SUITE}",
            "-o",
            f"APT::FTPArchive::Release::Components={COMPONENT}",
            "-o",
            "APT::FTPArchive::Release::Architectures=amd64 all",
            "release",
            ".",
        ],
        cwd=dist,
    ).stdout
    (dist / "Release").write_text(release)
    env = {**os.environ, "GNUPGHOME": str(home)}
    _gpg(
        home,
        "--local-user",
        fingerprint,
        "--clearsign",
        "-o",
        str(dist / "InRelease"),
        str(dist / "Release"),
        env=env,
    )
    # gpg started an agent for this home: stop it, or it outlives the test.
    sh(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
    return SignedRepo(root=root, key=key, fingerprint=fingerprint)
