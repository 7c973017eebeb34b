"""The GPU facts against a real NVIDIA GPU and driver (skipped on hosts without one)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.e2e.targets import REPO

pytestmark = pytest.mark.gpu


def _local_facts(*facts: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "pyinfra", "--json", "@local", "fact", *facts],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {name: hosts["@local"] for name, hosts in json.loads(proc.stdout).items()}


def test_gpus_and_driver_match_nvidia_smi() -> None:
    got = _local_facts("facts.gpu.NvidiaGpus", "facts.gpu.NvidiaDriver", "facts.cuda.CudaToolkits")
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True)
    uuids = re.findall(r"UUID: (GPU-[0-9a-f-]+)", listed.stdout)
    gpus = got["facts.gpu.NvidiaGpus"]
    assert [g["uuid"] for g in gpus] == uuids
    for gpu in gpus:
        assert re.fullmatch(r"\d+\.\d+", gpu["compute_capability"])
        assert gpu["memory_total_mib"] > 0
        assert gpu["mig_mode"] in (None, "Enabled", "Disabled")
    driver = got["facts.gpu.NvidiaDriver"]
    assert driver is not None and driver["mismatch"] is False
    assert driver["userspace_version"] == driver["kernel_module_version"]
    assert re.fullmatch(r"\d+\.\d+", driver["max_cuda_version"] or "")
    for toolkit in got["facts.cuda.CudaToolkits"]:
        assert toolkit["version"]
