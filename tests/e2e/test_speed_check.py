"""e2e: the speed check on a CPU-only Debian 12 root: a verdict, fetched back, and no rerun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

DEPLOY = "deploys.speed_check.speed_check"
WHEELS = Path("/opt/wheels")


def test_no_framework_fails_the_host_with_the_reason(debian_root, run_pyinfra, tmp_path):
    run = run_pyinfra(debian_root, DEPLOY, {"speed_check_results_dir": str(tmp_path / "r")})
    assert run.returncode != 0
    assert "no framework to measure" in run.output
    verdict = json.loads(
        (debian_root.root.path / "var/lib/dlrig/speed_check/verdict.json").read_text()
    )
    assert verdict["exit_code"] == 2 and verdict["ok"] is False


@pytest.mark.skipif(not list(WHEELS.glob("torch-*+cpu-cp311-*.whl")), reason="no local CPU torch")
def test_cpu_torch_verdict_is_fetched_and_not_rerun(debian_root, converge, tmp_path):
    root = debian_root.root
    root.bind(str(WHEELS), "/wheels")
    root.run(
        "apt-get install -y -qq python3-venv >/dev/null && python3 -m venv /opt/venv && "
        "/opt/venv/bin/pip install -q --cert /etc/ssl/certs/ca-certificates.crt "
        "--find-links /wheels torch==2.13.0 numpy",
        timeout=900,
    )
    results = tmp_path / "results"
    data = {
        "speed_check_python": "/opt/venv/bin/python",
        "speed_check_repeats": 2,
        "speed_check_results_dir": str(results),
    }

    first, _ = converge(debian_root, DEPLOY, data)

    assert "Speed check | Run the speed check (stack changed)" in first.changed
    assert f"Speed check on {debian_root.name}: OK (GPU: none)" in first.output
    (fetched,) = results.glob("*/verdict.json")
    verdict = json.loads(fetched.read_text())
    assert verdict["ok"] is True and verdict["gpu_expected"] is False
    assert verdict["figures"]["torch"]["cpu_gflops"] > 0
    assert verdict["versions"]["torch"].startswith("2.13.0")
