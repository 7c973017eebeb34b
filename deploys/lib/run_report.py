"""The run report: after a real run, one table per host — plan, builds, frameworks, speed.

``install()`` (called by the entry deploys) registers it once; it prints when pyinfra exits,
after the fleet summary's failures, and never for ``--dry`` runs.
"""

from __future__ import annotations

import atexit
import json
import sys
from pathlib import Path
from typing import Any

# Operations whose change means "built (or restored from the build cache) in this run".
BUILD_OPS = {
    "Boost": "Install Boost | Build Boost",
    "Caffe": "Build Caffe-SSD from source | Build and install Caffe",
}


def format_report(
    host: str, plan: str | None, builds: dict[str, str], verdict: dict[str, Any] | None
) -> str:
    """One host's report.

    + host: the host's name
    + plan: the preflight plan's summary (facts and choices), or None
    + builds: component → what happened (``built or restored from cache``, ``up to date``, …)
    + verdict: the speed check's JSON verdict, or None
    """
    lines = [f"--> dlrig run report: {host}"]
    for line in (plan or "no plan (preflight did not run)").splitlines():
        lines.append(f"    {line}")
    for name, status in builds.items():
        lines.append(f"    {name}: {status}")
    if verdict is None:
        lines.append("    speed check: no verdict on the controller")
    else:
        versions = ", ".join(
            f"{k} {v}" for k, v in sorted((verdict.get("versions") or {}).items()) if v
        )
        lines.append(f"    frameworks: {versions or 'none'}")
        status = "ok" if verdict.get("ok") else "FAILED"
        lines.append(f"    speed check: {status}")
        for name, figure in sorted((verdict.get("figures") or {}).items()):
            parts = []
            for side in ("cpu", "gpu"):
                if f"{side}_gflops" in figure:
                    parts.append(f"{side.upper()} {figure[f'{side}_gflops']:.1f} GFLOP/s")
                elif f"{side}_ms_per_image" in figure:
                    parts.append(f"{side.upper()} {figure[f'{side}_ms_per_image']:.1f} ms/img")
            if "speedup" in figure:
                parts.append(f"{figure['speedup']:.1f}x")
            lines.append(f"      {name}: {', '.join(parts)}")
        for failure in verdict.get("failures") or []:
            lines.append(f"      ! {failure}")
    return "\n".join(lines) + "\n"


def _build_status(state: Any, host: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for op_hash, op in state.ops.get(host, {}).items():
        names = state.op_meta[op_hash].names
        for component, prefix in BUILD_OPS.items():
            if not any(n.startswith(prefix) for n in names):
                continue
            meta = op.operation_meta
            if not meta.did_succeed(_raise_if_not_complete=False):
                out[component] = "FAILED (see the build log under /var/log/dlrig/)"
            elif meta.did_change():
                out[component] = "built or restored from the build cache in this run"
            else:
                out[component] = "up to date (build key recorded)"
    return out


def install() -> None:
    """Print the run report for every host when pyinfra exits (once per run)."""
    from pyinfra import state
    from pyinfra.api.state import StateStage

    real_state = state._get_module()
    if getattr(real_state, "_dlrig_run_report", False):
        return
    real_state._dlrig_run_report = True

    def _print() -> None:
        if real_state.current_stage < StateStage.Execute:
            return
        from deploys.preflight import _PLANS

        for host in real_state.inventory.iter_activated_hosts():
            plan = _PLANS.get((id(real_state), host.name))
            results = Path(host.data.get("speed_check_results_dir") or "results")
            verdict_path = results / host.name.replace("/", "_") / "verdict.json"
            verdict = None
            if verdict_path.is_file():
                try:
                    verdict = json.loads(verdict_path.read_text())
                except ValueError:
                    verdict = None
            report = format_report(
                host.name,
                plan.summary() if plan else None,
                _build_status(real_state, host),
                verdict,
            )
            sys.stderr.write(report)
        sys.stderr.flush()

    atexit.register(_print)
