"""Fixtures for the e2e tier: real Debian 12 roots (``@chroot``) and real sshd hosts.

+ debian_root: a fresh root per test, driven with pyinfra's ``@chroot`` connector
+ ssh_host: a fresh root with sshd on a loopback port, user ``dlrig`` with sudo, host keys checked
+ converge: ``converge(target, deploy, data)`` runs a deploy twice (second run: no changes)
+ run_pyinfra: one pyinfra run, for failure cases
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e import targets

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _e2e_prerequisites() -> None:
    if os.geteuid() != 0:
        pytest.skip("e2e targets need root (chroot, mount)")
    missing = [t for t in ("debootstrap", "ssh-keygen", "chroot") if not shutil.which(t)]
    if missing:
        pytest.fail(f"e2e tools missing: {missing}; run ./test.sh, which installs them")


@pytest.fixture
def debian_root() -> Iterator[targets.Target]:
    """A fresh debootstrapped Debian 12 root, as a ``@chroot`` target."""
    with targets.fresh_root() as root:
        yield targets.chroot_target(root)


@pytest.fixture
def ssh_host(tmp_path: Path) -> Iterator[targets.Target]:
    """A fresh Debian 12 root running sshd on 127.0.0.1; pyinfra logs in as ``dlrig`` + sudo."""
    with targets.fresh_root() as root, targets.ssh_target(root, tmp_path) as target:
        yield target


@pytest.fixture
def converge(tmp_path: Path) -> Callable[..., tuple[targets.Run, targets.Run]]:
    def _converge(target, deploy: str, data=None, **kw):
        return targets.converge_twice(target, deploy, data, workdir=tmp_path, **kw)

    return _converge


@pytest.fixture
def run_pyinfra(tmp_path: Path) -> Callable[..., targets.Run]:
    def _run(target, deploy: str, data=None, **kw):
        return targets.pyinfra(target, deploy, data, workdir=tmp_path, **kw)

    return _run
