"""e2e: dlrig's facts and the report deploy on a real Debian 12 root (``@chroot``)."""

from __future__ import annotations

import glob
import json
import subprocess
import sys

import pytest

from tests.e2e.targets import REPO

pytestmark = pytest.mark.e2e

FACTS = (
    "facts.gpu.NvidiaGpus",
    "facts.gpu.NvidiaDriver",
    "facts.cuda.CudaToolkits",
    "facts.cuda.Cudnn",
    "facts.toolchain.HostCompilers",
    "facts.python.PythonEnv",
    "facts.platform.ColabRuntime",
    "facts.platform.SystemSummary",
)


def _facts(target, *facts: str) -> dict:
    """``pyinfra --json <target> fact ...`` through the CLI, as a user runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "pyinfra", "--json", target.name, "fact", *facts],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "could not" not in proc.stderr, proc.stderr  # no fact failed to load or parse
    return {name: hosts[target.name] for name, hosts in json.loads(proc.stdout).items()}


def test_facts_give_empty_defaults_on_bare_debian(debian_root) -> None:
    missing = "python=/opt/none; touch /pwned"
    got = _facts(debian_root, *FACTS, "facts.python.PythonEnv", missing)
    assert got["facts.gpu.NvidiaGpus"] == []
    assert got["facts.gpu.NvidiaDriver"] is None
    assert got["facts.cuda.CudaToolkits"] == []
    assert got["facts.cuda.Cudnn"] is None
    assert got["facts.toolchain.HostCompilers"] == {
        "gcc": {"default": None, "installed": {}},
        "g++": {"default": None, "installed": {}},
        "alternatives": {
            "gcc": {"current": None, "choices": []},
            "g++": {"current": None, "choices": []},
        },
    }
    env = got["facts.python.PythonEnv"]
    assert env["python"] == "/usr/bin/python3"
    assert env["version"].startswith("3.11.")
    assert env["packages"] == dict.fromkeys(
        ("tensorflow", "keras", "torch", "torchvision", "jax", "numpy")
    )
    assert env["tf_build"] is None
    # A missing interpreter gives None; the quoted argument ran nothing.
    assert got[f"facts.python.PythonEnv ({missing})"] is None
    assert not (debian_root.root.path / "pwned").exists()
    assert got["facts.platform.ColabRuntime"]["hosted"] is False
    system = got["facts.platform.SystemSummary"]
    assert (system["os_id"], system["os_version"], system["os_codename"]) == (
        "debian",
        "12",
        "bookworm",
    )
    assert system["cpu_count"] >= 1 and system["mem_total_mib"] > 0
    assert system["disk_free_mib"]["/"] > 0


def test_cuda_toolkit_found_when_mounted(debian_root) -> None:
    toolkits = sorted(glob.glob("/usr/local/cuda-*/bin/nvcc"))
    if not toolkits:
        pytest.skip("no CUDA toolkit under /usr/local on this machine")
    path = toolkits[-1].rsplit("/bin/nvcc", 1)[0]
    debian_root.root.bind(path)
    debian_root.root.run(f"ln -s {path} /usr/local/cuda")
    version = (
        subprocess.run(
            [f"{path}/bin/nvcc", "--version"], capture_output=True, text=True, check=True
        )
        .stdout.split(", V")[-1]
        .split()[0]
    )

    [toolkit] = _facts(debian_root, "facts.cuda.CudaToolkits")["facts.cuda.CudaToolkits"]
    assert toolkit["version"] == version
    assert (toolkit["path"], toolkit["nvcc"]) == (path, f"{path}/bin/nvcc")
    assert toolkit["is_default"] is True


def test_report_prints_a_table_and_changes_nothing(debian_root, converge) -> None:
    before = debian_root.root.packages()
    first, second = converge(debian_root, "deploys/report.py")
    assert first.changed == [] and second.changed == []
    for run in (first, second):
        assert f"dlrig facts: {debian_root.name}" in run.output
        assert "| GPUs          | none" in run.output
        assert "| System        | debian 12 (bookworm)" in run.output
    assert debian_root.root.packages() == before


def test_report_over_ssh_with_sudo(ssh_host, converge) -> None:
    first, _ = converge(ssh_host, "deploys/report.py")
    assert f"dlrig facts: {ssh_host.name}" in first.output
    assert "| System        | debian 12 (bookworm)" in first.output
    # The plan resolved (no Plan row) and the report shows its interpreter, the pip stack's
    # venv, which this bare host does not have yet.
    assert "| Plan " not in first.output
    assert (
        "| Python        | /opt/dlrig/venv/bin/python does not exist yet (the pip stack makes it)"
        in first.output
    )
