"""e2e: the server entry deploy, CPU profile, on a Debian 12 root over SSH as a sudo user:
converge, rerun, verdict fetched back."""

from __future__ import annotations

import json

import pytest

from tests.e2e import targets
from tests.e2e.test_pip_stack import HAS_TORCH, VENV, _data, stack_root  # noqa: F401

pytestmark = pytest.mark.e2e


def test_gpu_server_cpu_profile_converges_and_speed_checks(stack_root, converge, tmp_path):  # noqa: F811
    results = tmp_path / "results"
    data = {
        **_data(),
        # Boost and Caffe converge in their own e2e (marker build); building them again here
        # would double the suite's longest steps.
        "profile_skip": ["boost", "caffe"],
        "pip_stack_venv": VENV,
        "speed_check_repeats": 2,
        "speed_check_results_dir": str(results),
    }

    # The server path as fleets run it: user dlrig over SSH, host key checked, every step via
    # sudo (venv, pip, speed check in root-owned places, the verdict fetched back).
    with targets.ssh_target(stack_root.root, tmp_path) as server:
        first, _ = converge(server, "deploys/gpu_server.py", data)

    names = first.changed
    assert "Configure APT sources | Enable deb-src in the distribution's sources" in names
    assert "Speed check | Run the speed check (stack changed)" in names
    assert f"Speed check on {server.name}: OK (GPU: none)" in first.output
    assert f"--> dlrig run report: {server.name}" in first.output
    assert "mode: CPU_ONLY" in first.output
    (fetched,) = results.glob("*/verdict.json")
    verdict = json.loads(fetched.read_text())
    assert verdict["ok"] is True and verdict["gpu_expected"] is False
    assert verdict["figures"]["tensorflow"]["cpu_gflops"] > 0
    if HAS_TORCH:
        assert verdict["figures"]["torch"]["cpu_gflops"] > 0
    # The verdict on the host matches the one fetched back.
    on_host = stack_root.root.path / "var/lib/dlrig/speed_check/verdict.json"
    assert json.loads(on_host.read_text()) == verdict
