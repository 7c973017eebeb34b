"""The report's CLI run: it ends without a prompt when there is nothing else to do, and only
then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _pyinfra(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``pyinfra <args>`` as a notebook cell runs it: no stdin (cwd: tmp, for pyinfra's log)."""
    return subprocess.run(
        [sys.executable, "-m", "pyinfra", *args],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_report_runs_without_a_prompt(tmp_path: Path) -> None:
    run = _pyinfra(tmp_path, "@local", str(REPO / "deploys" / "report.py"))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Press enter" not in run.stderr
    assert "dlrig facts: @local" in run.stderr
    assert "| Python " in run.stderr and "| Speed check " in run.stderr
    assert run.stdout == ""


def test_report_does_not_end_a_run_with_more_to_do(tmp_path: Path) -> None:
    """A deploy file after the report still runs: the report does not end the run early."""
    marker = tmp_path / "ran"
    deploy = tmp_path / "more.py"
    deploy.write_text(
        "from pyinfra.operations import server\n"
        f"server.shell(name='more', commands=['touch {marker}'])\n"
    )
    run = _pyinfra(tmp_path, "-y", "@local", str(REPO / "deploys" / "report.py"), str(deploy))
    assert run.returncode == 0, run.stderr[-3000:]
    assert "dlrig facts: @local" in run.stderr
    assert "Report printed" not in run.stderr
    assert marker.exists()
