"""Readable tables of speed check verdicts (pure: JSON in, text out)."""

from __future__ import annotations

from typing import Any

_COLUMNS = (
    ("framework", 11),
    ("CPU", 16),
    ("GPU", 16),
    ("speedup", 8),
    ("of peak", 8),
)


def _rate(figure: dict[str, Any], side: str) -> str:
    if f"{side}_gflops" in figure:
        return f"{figure[f'{side}_gflops']:.1f} GFLOP/s"
    if f"{side}_ms_per_image" in figure:
        return f"{figure[f'{side}_ms_per_image']:.1f} ms/img"
    return "-"


def format_verdict(host: str, verdict: dict[str, Any]) -> str:
    """One table per host: each framework's CPU and GPU rate, speedup, fraction of peak.

    + host: the host's name
    + verdict: the speed check's JSON verdict
    """
    status = "OK" if verdict.get("ok") else "FAILED"
    gpus = ", ".join(verdict.get("gpus") or []) or "none"
    lines = [f"Speed check on {host}: {status} (GPU: {gpus})"]
    lines.append("  " + " ".join(name.ljust(width) for name, width in _COLUMNS))
    for name, figure in sorted((verdict.get("figures") or {}).items()):
        speedup = f"{figure['speedup']:.1f}x" if "speedup" in figure else "-"
        peak = figure.get("gpu_peak_fraction")
        cells = (
            name,
            _rate(figure, "cpu"),
            _rate(figure, "gpu"),
            speedup,
            f"{peak:.0%}" if peak is not None else "-",
        )
        lines.append("  " + " ".join(c.ljust(w) for c, (_, w) in zip(cells, _COLUMNS, strict=True)))
    skipped = verdict.get("skipped") or []
    if skipped:
        lines.append(f"  skipped (not installed, not expected): {', '.join(skipped)}")
    for failure in verdict.get("failures") or []:
        lines.append(f"  ! {failure}")
    return "\n".join(lines)
