"""e2e: the speed check alone on a Debian 12 root (its run with a real stack: test_gpu_server).

Caffe here is the unit tests' test double (``write_fake_caffe``): a CPU_ONLY build whose
``set_device`` aborts, as Caffe's ``LOG(FATAL)`` does.
"""

from __future__ import annotations

import json

import pytest

from tests.files.test_speed_check import write_fake_caffe

pytestmark = pytest.mark.e2e

DEPLOY = "deploys.speed_check.speed_check"
ON_HOST = "var/lib/dlrig/speed_check/verdict.json"
FAIL_STEP = "Speed check | Fail the host when its verdict failed"


def _install_fake_caffe(target) -> None:
    root = target.root.path
    write_fake_caffe(root / "usr/local/lib/python3.11/dist-packages", root / "opt/dlrig/caffe")


def _fetched(results) -> dict:
    (path,) = results.glob("*/verdict.json")
    return json.loads(path.read_text())


def test_expected_framework_missing_fails_the_host_after_the_fetch(
    debian_root, run_pyinfra, tmp_path
):
    results = tmp_path / "r"
    # A verdict an earlier run left on the controller must not pass for this run's.
    stale = results / debian_root.name.replace("/", "_") / "verdict.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"ok": True, "failures": []}))
    data = {"pip_stack_venv": None, "speed_check_results_dir": str(results)}

    run = run_pyinfra(debian_root, DEPLOY, data, args=['expect=["caffe"]'])

    assert run.returncode != 0
    reason = "caffe: import failed: ModuleNotFoundError: No module named 'caffe'"
    # Run, fetch and print, then the last step fails the host with the failures.
    assert f"speed check failed:\n  - {reason}" in run.output, run.output[-3000:]
    assert run.output.index("Fetch and print the verdict") < run.output.index(FAIL_STEP)
    verdict = _fetched(results)
    assert verdict["ok"] is False and verdict["exit_code"] == 3
    assert verdict["failures"] == [reason] and verdict["expect"] == ["caffe"]
    assert json.loads((debian_root.root.path / ON_HOST).read_text()) == verdict


def test_gpu_expected_on_a_cpu_host_fails_with_the_reason(debian_root, run_pyinfra, tmp_path):
    _install_fake_caffe(debian_root)
    results = tmp_path / "r"
    data = {
        "pip_stack_venv": None,
        "speed_check_results_dir": str(results),
        "speed_check_gpu": "yes",
        "speed_check_repeats": 1,
    }

    run = run_pyinfra(debian_root, DEPLOY, data)

    assert run.returncode != 0
    assert f"{FAIL_STEP} \n    [{debian_root.name}] speed check failed:" in run.output
    verdict = _fetched(results)
    assert verdict["ok"] is False and verdict["gpu_expected"] is True
    assert verdict["failures"] == [
        "gpu: a GPU is expected but nvidia-smi lists none (no GPU or no driver)",
        "caffe: does not see the GPU (CPU-only build or driver mismatch)",
    ]
    # The CPU_ONLY Caffe was measured on the CPU, never asked for its GPU (that aborts).
    assert verdict["figures"]["caffe"]["gpu_build"] is False
    assert "cpu_ms_per_image" in verdict["figures"]["caffe"]
    assert f"Speed check on {debian_root.name}: FAILED (GPU: none)" in run.output


def test_cpu_only_caffe_converges_and_its_verdict_stands(debian_root, converge, tmp_path):
    _install_fake_caffe(debian_root)
    results = tmp_path / "r"
    data = {
        "pip_stack_venv": None,
        "speed_check_results_dir": str(results),
        "speed_check_repeats": 1,
    }

    first, _ = converge(debian_root, DEPLOY, data, args=['expect=["caffe"]'])

    assert "Speed check | Run the speed check (stack changed)" in first.changed
    assert f"Speed check on {debian_root.name}: OK (GPU: none)" in first.output
    # Second run: the passed verdict for the unchanged stack stands, and is this run's copy.
    verdict = _fetched(results)
    assert verdict["ok"] is True and verdict["expect"] == ["caffe"]
    assert verdict["figures"]["caffe"]["gpu_build"] is False
    assert json.loads((debian_root.root.path / ON_HOST).read_text()) == verdict
