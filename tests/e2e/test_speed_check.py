"""e2e: the speed check alone on a Debian 12 root (its run with a real stack: test_gpu_server)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

DEPLOY = "deploys.speed_check.speed_check"


def test_no_framework_fails_the_host_with_the_reason(debian_root, run_pyinfra, tmp_path):
    data = {"speed_check_python": "python3", "speed_check_results_dir": str(tmp_path / "r")}
    run = run_pyinfra(debian_root, DEPLOY, data)
    assert run.returncode != 0
    assert "no framework to measure" in run.output
    verdict = json.loads(
        (debian_root.root.path / "var/lib/dlrig/speed_check/verdict.json").read_text()
    )
    assert verdict["exit_code"] == 2 and verdict["ok"] is False
