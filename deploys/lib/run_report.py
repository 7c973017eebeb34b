"""The run report: after a real run, one table per host — plan, builds, frameworks, speed.

``install()`` (called by the entry deploys) registers it once; it prints when pyinfra exits,
after the fleet summary's failures, and never for ``--dry`` runs.
"""

from __future__ import annotations

import atexit
import sys
from typing import Any

# Operations whose change means "built (or restored from the build cache) in this run".
BUILD_OPS = {
    "Boost": "Install Boost | Build Boost",
    "Caffe": "Build Caffe-SSD from source | Build and install Caffe",
}


def format_report(
    host: str,
    plan: str | None,
    builds: dict[str, str],
    verdict: dict[str, Any] | None,
    measured: bool = True,
) -> str:
    """One host's report.

    + host: the host's name
    + plan: the preflight plan's summary (facts and choices), or None
    + builds: component → what happened (``built or restored from cache``, ``up to date``, …)
    + verdict: this run's speed check verdict, or None (the check did not get to a verdict)
    + measured: False when the stack was unchanged and the host's passed verdict for it stands
    """
    lines = [f"--> dlrig run report: {host}"]
    for line in (plan or "no plan (preflight did not run)").splitlines():
        lines.append(f"    {line}")
    for name, status in builds.items():
        lines.append(f"    {name}: {status}")
    if verdict is None:
        lines.append("    speed check: no verdict in this run")
    else:
        versions = ", ".join(
            f"{k} {v}" for k, v in sorted((verdict.get("versions") or {}).items()) if v
        )
        lines.append(f"    frameworks: {versions or 'none'}")
        status = "ok" if verdict.get("ok") else "FAILED"
        if not measured:
            status += " (not rerun: the passed verdict for this unchanged stack)"
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
        from deploys.speed_check import this_run_verdict

        for host in real_state.inventory.iter_activated_hosts():
            plan = _PLANS.get((id(real_state), host.name))
            # Only this run's verdict (fetched, or the host's passed one for an unchanged
            # stack): never a file an earlier run left in the results directory.
            entry = this_run_verdict(real_state, host.name)
            report = format_report(
                host.name,
                plan.summary() if plan else None,
                _build_status(real_state, host),
                entry["verdict"] if entry else None,
                entry["measured"] if entry else True,
            )
            sys.stderr.write(report)
        sys.stderr.flush()

    atexit.register(_print)
