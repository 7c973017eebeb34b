"""Golden plans of the Python stack for the three profiles: a plan change shows up as a diff.

Regenerate after a reviewed change: ``DLRIG_UPDATE_GOLDEN=1 pytest tests/deploys``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploys.lib.compat import DEFAULT_VENV
from deploys.lib.pip_stack import HostPlan, decide, resolve
from deploys.pip_stack import DEFAULTS

GOLDEN = Path(__file__).parent / "pip_stack"

# Hosted Colab GPU runtime: Ubuntu 22.04, T4, driver 550 (CUDA 12.4), Python 3.12, with its
# preinstalled frameworks (versions as `pip list` shows them there).
COLAB_PREINSTALLED = {
    "tensorflow": {"2.19.0"},
    "keras": {"3.10.0"},
    "torch": {"2.6.0+cu124"},
    "torchvision": {"0.21.0+cu124"},
    "numpy": {"2.0.2"},
    "notebook": {"6.5.7"},
}

COLAB_GPU = HostPlan(
    cpu_only=False,
    cuda="12.4",
    python="3.12",
    colab=True,
    torch_index_url="https://download.pytorch.org/whl/cu124",
)

PROFILES = {
    "colab-gpu": (COLAB_GPU, {}),
    "colab-gpu-preinstalled": (COLAB_GPU, COLAB_PREINSTALLED),
    # Ubuntu 24.04 server, H100, driver 570 (CUDA 12.8), Python 3.12, nothing installed.
    "ubuntu2404-h100": (
        HostPlan(
            cpu_only=False,
            cuda="12.8",
            python="3.12",
            torch_index_url="https://download.pytorch.org/whl/cu128",
        ),
        {},
    ),
    # Debian 12, no GPU, Python 3.11, nothing installed.
    "debian12-cpu": (HostPlan(cpu_only=True, cuda=None, python="3.11"), {}),
}


def _venv(plan: HostPlan) -> str | None:
    # What the preflight plan resolves pip_stack_venv 'auto' to (deploys.lib.compat).
    return None if plan.colab else DEFAULT_VENV


def render(name: str) -> str:
    plan, installed = PROFILES[name]
    stack = resolve(plan, DEFAULTS["pip_stack_packages"], venv=_venv(plan))
    lines = [stack.describe(), "decisions:"]
    for d in decide(stack, installed):
        lines.append(f"  {'install' if d.install else 'keep   '}  {d.why}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_golden_plan(name):
    path = GOLDEN / f"{name}.txt"
    text = render(name)
    if os.environ.get("DLRIG_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden plan {path}: run with DLRIG_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text()


def test_colab_keeps_its_preinstalled_cuda_frameworks():
    plan, installed = PROFILES["colab-gpu-preinstalled"]
    stack = resolve(plan, DEFAULTS["pip_stack_packages"])
    assert stack.venv is None
    todo = {d.req.name for d in decide(stack, installed) if d.install}
    assert todo == {"jupyter-http-over-ws"}


def test_server_and_cpu_variants():
    h100_plan = PROFILES["ubuntu2404-h100"][0]
    h100 = resolve(h100_plan, DEFAULTS["pip_stack_packages"], venv=_venv(h100_plan))
    assert h100.torch_index_url == "https://download.pytorch.org/whl/cu128"
    assert h100.venv == "/opt/dlrig/venv"
    assert "tensorflow[and-cuda]" in {r.install for r in h100.requirements}
    assert set(h100.expect_gpu) == {"tensorflow", "torch"}
    cpu = resolve(PROFILES["debian12-cpu"][0], DEFAULTS["pip_stack_packages"])
    assert cpu.torch_index_url == "https://download.pytorch.org/whl/cpu"
    assert "tensorflow-cpu" in {r.install for r in cpu.requirements}
    assert cpu.expect_gpu == ()
