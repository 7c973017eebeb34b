"""The final verdict: is the GPU really used, and how much faster than the CPU?"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, QuoteString, StringCommand, deploy, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, python, server

from deploys.lib import data
from deploys.lib.speed_report import format_verdict
from facts.speed_check import SpeedCheckState

PREFIX = "speed_check_"

DEFAULTS: dict[str, Any] = {
    "speed_check_python": None,
    "speed_check_min_speedup": 2.0,
    "speed_check_repeats": 5,
    "speed_check_gpu": "auto",
    "speed_check_frameworks": ["tensorflow", "torch", "caffe"],
    "speed_check_results_dir": "results",
}

DOCS: dict[str, str] = {
    "speed_check_python": (
        "Interpreter that runs the check; None = the pip stack's (pip_stack_venv's python when "
        "a venv is set, else pip_stack_python, else python3)."
    ),
    "speed_check_min_speedup": "Least GPU-over-CPU speedup a GPU host must reach, per framework.",
    "speed_check_repeats": "Timed repeats per measurement (after warm-up); the median counts.",
    "speed_check_gpu": (
        "auto (expect a GPU when nvidia-smi lists one), yes (fail without one) or no (CPU only)."
    ),
    "speed_check_frameworks": "Frameworks to measure when installed: tensorflow, torch, caffe.",
    "speed_check_results_dir": (
        "Controller directory the verdicts are fetched into, as <dir>/<host>/verdict.json."
    ),
}

SOURCE = Path(__file__).resolve().parents[1] / "files" / "speed_check"
REMOTE_DIR = "/opt/dlrig/speed_check"
SCRIPT = f"{REMOTE_DIR}/speed_check.py"
VERDICT = "/var/lib/dlrig/speed_check/verdict.json"
FRAMEWORKS = ("tensorflow", "torch", "caffe")


def script_digest(directory: Path = SOURCE) -> str:
    """The digest ``speed_check.py`` reports for itself (same files, same order)."""
    digest = hashlib.sha256()
    for path in sorted(directory.iterdir()):
        if path.is_file() and path.suffix in (".py", ".prototxt"):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _python() -> str:
    if host.data.speed_check_python:
        return host.data.speed_check_python
    venv = host.data.get("pip_stack_venv")
    if venv:
        return f"{venv}/bin/python"
    return host.data.get("pip_stack_python") or "python3"


def _check_values() -> None:
    if host.data.speed_check_gpu not in ("auto", "yes", "no"):
        raise DeployError(f"{host.name}: speed_check_gpu must be auto, yes or no")
    unknown = sorted(set(host.data.speed_check_frameworks) - set(FRAMEWORKS))
    if unknown:
        raise DeployError(f"{host.name}: speed_check_frameworks: unknown {unknown}")
    if host.data.speed_check_repeats < 1 or host.data.speed_check_min_speedup <= 0:
        raise DeployError(f"{host.name}: speed_check_repeats/min_speedup must be positive")


def _command(python_path: str) -> StringCommand:
    return StringCommand(
        QuoteString(python_path),
        QuoteString(SCRIPT),
        "--out",
        QuoteString(VERDICT),
        "--min-speedup",
        QuoteString(str(host.data.speed_check_min_speedup)),
        "--repeats",
        QuoteString(str(host.data.speed_check_repeats)),
        "--gpu",
        QuoteString(host.data.speed_check_gpu),
        "--frameworks",
        QuoteString(",".join(host.data.speed_check_frameworks)),
    )


@operation(is_idempotent=False, idempotent_notice="Runs when the stack changed since its verdict.")
def run_when_stale(python_path: str):
    """
    Run the speed check when the stack changed since the last passed verdict.

    + python_path: the interpreter to run it with

    The stack (framework versions, Caffe build key, GPUs, the script itself) is read on the host
    before the run; a passed verdict for the same stack means nothing to do.
    """
    state = host.get_fact(SpeedCheckState, python=python_path, script=SCRIPT, verdict=VERDICT)
    if (
        state
        and state["recorded"] == state["stack"]
        and state["stack"]["script"] == (script_digest())
    ):
        host.noop("a passed verdict exists for this stack")
        return
    yield _command(python_path)


def _fetch_and_print(results_dir: str) -> None:
    dest = Path(results_dir) / host.name.replace("/", "_") / "verdict.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    host.get_file(VERDICT, str(dest))
    verdict = json.loads(dest.read_text())
    print(format_verdict(host.name, verdict), flush=True)


@deploy("Speed check", data_defaults=DEFAULTS)
def speed_check(after: Sequence[OperationMeta] = ()) -> None:
    """
    Upload and run the CPU-vs-GPU speed check; a failed check fails the host.

    + after: operations that change the stack in this run (pip installs, the Caffe build); when
      one of them changed something, the check runs again even though the stack read before the
      run looked measured

    Data keys (see README): ``speed_check_*``. The JSON verdict is fetched back to
    ``<speed_check_results_dir>/<host>/verdict.json`` and printed as a table.

    **Example:**

    .. code:: python

        from deploys.speed_check import speed_check

        speed_check()
    """
    data.check_host_data(host, DEFAULTS)
    _check_values()
    python_path = _python()

    files.directory(name="Create the speed check directory", path=REMOTE_DIR, mode="755")
    files.directory(name="Create the verdict directory", path=VERDICT.rsplit("/", 1)[0])
    for path in sorted(SOURCE.iterdir()):
        if path.is_file():
            files.put(
                name=f"Upload {path.name}",
                src=str(path),
                dest=f"{REMOTE_DIR}/{path.name}",
                mode="644",
            )
    stale = run_when_stale(name="Run the speed check (stack changed)", python_path=python_path)
    upstream = list(after)
    rerun = server.shell(
        name="Run the speed check (this run changed the stack)",
        commands=[_command(python_path)],
        _if=lambda: any(op.did_change() for op in upstream) and not stale.did_change(),
    )
    python.call(
        name="Fetch and print the verdict",
        function=_fetch_and_print,
        results_dir=host.data.speed_check_results_dir,
        _if=lambda: stale.did_change() or rerun.did_change(),
    )
