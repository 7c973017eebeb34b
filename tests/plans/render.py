"""Golden dry-run plans: run ``pyinfra --dry --json`` on inventories/ci.py, render readable text.

One text file per profile under tests/plans/: the resolved plan (compiler, CUDA, arch list,
wheels) and every operation that would change the host or might (conditional). A plan change
shows up as a reviewable diff.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from deploys.lib.compat import Plan

REPO = Path(__file__).resolve().parents[2]
PLANS = Path(__file__).resolve().parent

# profile file name → (fake host, entry deploy)
PROFILES: dict[str, tuple[str, str]] = {
    "colab_gpu": ("@fake/colab-gpu", "deploys/colab.py"),
    "ubuntu2404_h100_server": ("@fake/h100-server", "deploys/gpu_server.py"),
    "debian12_cpu": ("@fake/debian-cpu", "deploys/gpu_server.py"),
}


def dry_run(host: str, deploy: str) -> tuple[dict, dict]:
    """Run the dry plan for one fake host; return (pyinfra's JSON plan, dlrig's resolved plan)."""
    with tempfile.TemporaryDirectory() as plan_dir:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pyinfra",
                "inventories/ci.py",
                deploy,
                "--dry",
                "--json",
                "--limit",
                host,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            env={**os.environ, "DLRIG_PLAN_DIR": plan_dir},
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"dry run of {deploy} on {host} failed:\n{proc.stderr[-4000:]}")
        pyinfra_plan = json.loads(proc.stdout[proc.stdout.index("{") :])
        (resolved,) = Path(plan_dir).glob("*.json")
        return pyinfra_plan, json.loads(resolved.read_text())


def render(name: str) -> str:
    """The golden text of one profile."""
    host, deploy = PROFILES[name]
    pyinfra_plan, resolved = dry_run(host, deploy)
    lines = [
        f"# dlrig plan: {name} ({host}, {deploy})",
        "# Regenerate: python -m tests.plans.update",
        "",
        "## Resolved",
        *Plan.from_dict(resolved).summary().splitlines(),
        "",
        "## Operations (+ changes, ? changes if an earlier operation changed something)",
    ]
    for op in pyinfra_plan["plan"]:
        if host in op["hosts_with_change"]:
            lines.append(f"+ {op['name']}")
        elif host in op["hosts_with_conditional_change"]:
            lines.append(f"? {op['name']}")
    return "\n".join(lines) + "\n"
