"""The local runtime's stack kernel: when it is needed, its kernelspec, and its state read on
real interpreters through the fact's own command."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploys import local_runtime_kernel as step
from deploys.lib import local_runtime as lr
from deploys.lib import local_runtime_kernel as kernel
from facts.local_runtime_kernel import StackKernelState


@pytest.mark.parametrize(
    ("python", "venv", "expected"),
    [
        ("/opt/dlrig/venv/bin/python", "/opt/dlrig/jupyter", True),
        ("/usr/bin/python3", "/opt/dlrig/jupyter", True),
        ("/opt/dlrig/jupyter/bin/python", "/opt/dlrig/jupyter", False),
        ("/opt/dlrig/jupyter/bin/python3", "/opt/dlrig/jupyter/", False),
    ],
)
def test_stack_kernel_only_for_another_interpreter(python, venv, expected):
    assert kernel.uses_stack_kernel(python, venv) is expected


def test_kernel_spec_runs_the_stack_interpreter_with_its_path_first():
    spec = json.loads(kernel.render_kernel_spec("/opt/dlrig/venv/bin/python"))
    assert spec["argv"] == [
        "/opt/dlrig/venv/bin/python",
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    assert spec["language"] == "python"
    assert spec["env"]["PATH"] == f"/opt/dlrig/venv/bin:{lr.SYSTEM_PATH}"
    # A system interpreter's directory is on the path already.
    system = json.loads(kernel.render_kernel_spec("/usr/bin/python3"))
    assert system["env"]["PATH"] == lr.SYSTEM_PATH
    assert kernel.kernel_sha256("/usr/bin/python3") != kernel.kernel_sha256(
        "/opt/dlrig/venv/bin/python"
    )


def _kernel_state(python: str, spec: Path) -> dict:
    """``StackKernelState`` as pyinfra runs it: its command through ``sh``, then ``process``."""
    fact = StackKernelState()
    command = fact.command(python=python, spec=str(spec)).get_raw_value()
    run = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return fact.process(run.stdout.splitlines())


def _sh_args(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "-c", script, "test", *args], capture_output=True, text=True, check=True
    )


def test_kernel_state_against_real_interpreters(tmp_path):
    spec = tmp_path / "kernels" / "python3" / "kernel.json"
    missing = _kernel_state(str(tmp_path / "no" / "python"), spec)
    assert missing == {"python": None, "ipykernel": False, "spec": None}
    # A file that is not executable is no interpreter either.
    (tmp_path / "python").write_text("")
    assert _kernel_state(str(tmp_path / "python"), spec)["python"] is None

    # An interpreter that finds a (stand-in) ipykernel package, and one that does not.
    site = tmp_path / "site"
    (site / "ipykernel").mkdir(parents=True)
    (site / "ipykernel" / "__init__.py").write_text("")
    wrapper = tmp_path / "bin" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={site} exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    spec.parent.mkdir(parents=True)
    spec.write_text(kernel.render_kernel_spec(str(wrapper)))
    found = _kernel_state(str(wrapper), spec)
    assert found == {
        "python": str(wrapper),
        "ipykernel": True,
        "spec": kernel.kernel_sha256(str(wrapper)),
    }
    bare = tmp_path / "bare"
    bare.write_text(f'#!/bin/sh\nPYTHONPATH= exec {sys.executable} -I -S "$@"\n')
    bare.chmod(0o755)
    assert _kernel_state(str(bare), spec)["ipykernel"] is False


def test_parse_kernel_state_ignores_noise():
    lines = ["python=/usr/bin/python3", "warning: something", "ipykernel=yes", "spec="]
    assert kernel.parse_kernel_state(lines) == {
        "python": "/usr/bin/python3",
        "ipykernel": True,
        "spec": None,
    }


def test_write_file_script_writes_the_kernel_spec(tmp_path):
    spec = tmp_path / "jupyter" / "kernels" / "python3" / "kernel.json"
    content = kernel.render_kernel_spec("/opt/dlrig/venv/bin/python")
    _sh_args(step._WRITE_FILE, str(spec), content)
    assert spec.read_text() == content
    assert stat.S_IMODE(spec.stat().st_mode) == 0o644
    assert not spec.with_suffix(".json.tmp").exists()


def test_kernel_scripts_are_valid_sh():
    for script in (kernel.kernel_state_script(), step._WRITE_FILE):
        assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0, script
