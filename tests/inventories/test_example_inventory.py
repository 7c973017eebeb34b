"""The example fleet inventory loads, has documented groups and data, and --limit picks hosts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra.api import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from deploys.lib import data

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventories/example_gpu_servers.py"


@pytest.fixture(scope="module")
def inventory():
    # Loading an inventory file runs it with a pyinfra state in context, as the CLI does.
    with ctx_state.use(State()):
        return make_inventory(str(INVENTORY), cwd=str(REPO))


def test_groups_and_hosts(inventory):
    groups = {name: sorted(h.name for h in inventory.get_group(name)) for name in ("h100", "t4")}
    assert groups == {
        "h100": ["gpu-01.example.net", "gpu-02.example.net", "gpu-03.example.net"],
        "t4": ["gpu-11.example.net", "gpu-12.example.net"],
    }
    assert all(h.name.endswith(".example.net") for h in inventory)
    assert "example_gpu_servers" in inventory.get_host("gpu-01.example.net").groups


def test_every_host_logs_in_as_sudo_user_with_keys_checked_or_opts_out(inventory):
    for host in inventory:
        d = host.data.dict()
        assert d["ssh_user"] != "root" and d["_sudo"] is True
        strict = d["ssh_strict_host_key_checking"] == "yes"
        assert strict or d.get("fleet_insecure_host_keys") is True, host.name
        assert d["ssh_known_hosts_file"]
        data.check(d, data.known_keys())  # no unknown or mistyped dlrig key
    assert inventory.get_host("gpu-03.example.net").data.ssh_port == 2222


def test_limit_picks_a_group_a_host_and_a_glob(inventory):
    from pyinfra_cli.cli import _apply_inventory_limit

    def names(*limit: str) -> list[str]:
        return sorted(h.name for h in _apply_inventory_limit(inventory, limit))

    assert names("t4") == ["gpu-11.example.net", "gpu-12.example.net"]
    assert names("gpu-03.example.net") == ["gpu-03.example.net"]
    assert names("gpu-1*") == ["gpu-11.example.net", "gpu-12.example.net"]
    assert names("h100", "scratch") == [
        "gpu-01.example.net",
        "gpu-02.example.net",
        "gpu-03.example.net",
        "scratch-01.example.net",
    ]


def test_debug_inventory_works_without_connecting():
    proc = subprocess.run(
        [sys.executable, "-m", "pyinfra", str(INVENTORY), "debug-inventory"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[gpu-01.example.net]" in proc.stderr and "Connected" not in proc.stderr
