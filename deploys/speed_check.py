"""The final verdict: is the GPU really used, and how much faster than the CPU?"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pyinfra import host, logger
from pyinfra.api import DeployError, QuoteString, StringCommand, deploy, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files, python, server

from deploys.lib import data
from deploys.lib.speed_report import format_verdict
from facts.speed_check import SpeedCheckState

PREFIX = "speed_check_"

DEFAULTS: dict[str, Any] = {
    "speed_check_min_speedup": 2.0,
    "speed_check_repeats": 5,
    "speed_check_gpu": "auto",
    "speed_check_frameworks": ["tensorflow", "torch", "caffe"],
    "speed_check_results_dir": "results",
}

DOCS: dict[str, str] = {
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
    """The plan's interpreter: the one the stack, Boost.Python and pycaffe are for."""
    from deploys.pip_stack import target_python

    return target_python()


def _check_values() -> None:
    if host.data.speed_check_gpu not in ("auto", "yes", "no"):
        raise DeployError(f"{host.name}: speed_check_gpu must be auto, yes or no")
    unknown = sorted(set(host.data.speed_check_frameworks) - set(FRAMEWORKS))
    if unknown:
        raise DeployError(f"{host.name}: speed_check_frameworks: unknown {unknown}")
    if host.data.speed_check_repeats < 1 or host.data.speed_check_min_speedup <= 0:
        raise DeployError(f"{host.name}: speed_check_repeats/min_speedup must be positive")


# This run's verdict per (pyinfra state, host): fetched, or kept when the stack was unchanged.
# The run report reads it, never a file a previous run left behind.
VERDICTS: dict[tuple[int, str], dict[str, Any]] = {}

# Package names in pip_stack_packages that install a framework the check measures.
_PIP_FRAMEWORKS = {
    "tensorflow": "tensorflow",
    "tensorflow-cpu": "tensorflow",
    "tensorflow-gpu": "tensorflow",
    "torch": "torch",
}


def expected_frameworks(
    components: Sequence[str],
    packages: Mapping[str, str | None],
    frameworks: Sequence[str],
    torch_wheels: str = "index",
) -> list[str]:
    """The frameworks a run installs or builds, which the check must then find working.

    + components: the profile's components in this run (``caffe``, ``pip_stack``, …)
    + packages: ``pip_stack_packages`` (name → spec; None leaves a package out)
    + frameworks: ``speed_check_frameworks`` (only these are expected)
    + torch_wheels: ``pip_stack_torch_wheels``; with ``local`` torch is skipped when no local
      wheel fits, so it is not expected

    **Example:**

    .. code:: python

        expected_frameworks(["caffe", "pip_stack"], {"tensorflow": ""}, ["tensorflow", "caffe"])
        # ["tensorflow", "caffe"]
    """
    wanted: set[str] = set()
    if "caffe" in components:
        wanted.add("caffe")
    if "pip_stack" in components:
        for name, spec in packages.items():
            framework = _PIP_FRAMEWORKS.get(name.lower().replace("_", "-").split("[")[0])
            if spec is None or framework is None:
                continue
            if framework == "torch" and torch_wheels == "local":
                continue
            wanted.add(framework)
    return [name for name in FRAMEWORKS if name in wanted and name in frameworks]


def expected_for_host(components: Sequence[str]) -> list[str]:
    """``expected_frameworks`` from the current host's data (deploy defaults where unset).

    + components: the profile's components in this run
    """
    from deploys import pip_stack

    def get(key: str, defaults: Mapping[str, Any]) -> Any:
        value = host.data.get(key)
        return defaults[key] if value is None else value

    return expected_frameworks(
        components,
        get("pip_stack_packages", pip_stack.DEFAULTS),
        get("speed_check_frameworks", DEFAULTS),
        get("pip_stack_torch_wheels", pip_stack.DEFAULTS),
    )


def _prefix(key: str) -> str:
    value = host.data.get(key)
    if value:
        return str(value)
    if key == "caffe_prefix":
        from deploys.caffe import DEFAULTS as CAFFE_DEFAULTS

        return CAFFE_DEFAULTS[key]
    from deploys.boost import DEFAULTS as BOOST_DEFAULTS

    return BOOST_DEFAULTS[key]


def _options(expect: Sequence[str]) -> list[str]:
    """The script's options for this host (the same for the run and for ``--state``)."""
    return [
        "--min-speedup",
        str(host.data.speed_check_min_speedup),
        "--repeats",
        str(host.data.speed_check_repeats),
        "--gpu",
        host.data.speed_check_gpu,
        "--frameworks",
        ",".join(host.data.speed_check_frameworks),
        "--expect",
        ",".join(expect),
        "--caffe-prefix",
        _prefix("caffe_prefix"),
        "--boost-prefix",
        _prefix("boost_prefix"),
    ]


def _command(python_path: str, options: Sequence[str]) -> StringCommand:
    """Run the check. Exit 1 (a verdict that failed) succeeds: the verdict is fetched, then the
    last step fails the host; exit 2 (no verdict could be written) fails right here."""
    return StringCommand(
        QuoteString(python_path),
        QuoteString(SCRIPT),
        "--out",
        QuoteString(VERDICT),
        *(QuoteString(o) for o in options),
        _success_exit_codes=[0, 3],
    )


def _any_changed(ops: Sequence[OperationMeta]) -> bool:
    """Whether one of ``ops`` changed something on this host (an op that never ran: no)."""
    for op in ops:
        try:
            if op.did_change():
                return True
        except RuntimeError:  # not executed for this host (run once elsewhere, skipped)
            continue
    return False


def _local_verdict(results_dir: str) -> Path:
    return Path(results_dir) / host.name.replace("/", "_") / "verdict.json"


def _record(results_dir: str, verdict: dict[str, Any], measured: bool) -> None:
    VERDICTS[(id(host.state), host.name)] = {"verdict": verdict, "measured": measured}
    dest = _local_verdict(results_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(verdict, indent=2, sort_keys=True) + "\n")


@operation(is_idempotent=False, idempotent_notice="Runs when the stack changed since its verdict.")
def run_when_stale(
    python_path: str,
    options: Sequence[str],
    results_dir: str,
    rerun_pending: Callable[[], bool] = lambda: False,
):
    """
    Run the speed check when the stack changed since the last passed verdict.

    + python_path: the interpreter to run it with
    + options: the script's options (``--expect``, thresholds, prefixes): part of the stack
    + results_dir: controller directory of the fetched verdicts
    + rerun_pending: true when this run changed the stack (the next operation runs it then)

    The stack (framework versions, Boost and Caffe build keys, GPUs, the script, the options)
    is read on the host before the run; a passed verdict for the same stack means nothing to do,
    and that verdict is then this run's (copied to ``<results_dir>/<host>/verdict.json``). The
    command passes on a failed verdict (exit 3) so that it is fetched; no verdict (or a crash)
    fails it.
    """
    state = host.get_fact(
        SpeedCheckState, python=python_path, script=SCRIPT, verdict=VERDICT, options=list(options)
    )
    if (
        state
        and state["recorded"] == state["stack"]
        and state["stack"]["script"] == (script_digest())
    ):
        host.noop("a passed verdict exists for this stack")
        if host.state.is_executing and state.get("verdict") and not rerun_pending():
            _record(results_dir, state["verdict"], measured=False)
        return
    yield _command(python_path, options)


def _fetch_and_print(results_dir: str) -> None:
    dest = _local_verdict(results_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    host.get_file(VERDICT, str(dest))
    verdict = json.loads(dest.read_text())
    VERDICTS[(id(host.state), host.name)] = {"verdict": verdict, "measured": True}
    print(format_verdict(host.name, verdict), flush=True)


def this_run_verdict(state: Any, name: str) -> dict[str, Any] | None:
    """This run's verdict of a host: ``{verdict, measured}``, or None when there is none.

    + state: the pyinfra state of the run
    + name: the host's name
    """
    return VERDICTS.get((id(state), name))


def _verdict_failed() -> bool:
    entry = this_run_verdict(host.state, host.name)
    return entry is not None and not entry["verdict"].get("ok")


def fail_on_failed_verdict(state: Any, host: Any) -> bool:
    """Fail the host when this run's verdict failed, naming the failures (pyinfra callback).

    + state: the pyinfra state (passed by pyinfra)
    + host: the host (passed by pyinfra)
    """
    entry = this_run_verdict(state, host.name)
    if entry is None or entry["verdict"].get("ok"):
        return True
    failures = entry["verdict"].get("failures") or ["no reason given"]
    message = "speed check failed:\n  - " + "\n  - ".join(failures)
    host.log_styled(message, fg="red", log_func=logger.error)
    return False


@deploy("Speed check", data_defaults=DEFAULTS)
def speed_check(after: Sequence[OperationMeta] = (), expect: Sequence[str] = ()) -> None:
    """
    Upload and run the CPU-vs-GPU speed check; a failed check fails the host.

    + after: operations that change the stack in this run (pip installs, the Boost and Caffe
      builds); when one of them changed something, the check runs again even though the stack
      read before the run looked measured
    + expect: frameworks this run installed or built (``tensorflow``, ``torch``, ``caffe``):
      one that is absent or fails to import is a failure, never skipped

    Data keys (see README): ``speed_check_*``; ``caffe_prefix`` and ``boost_prefix`` locate the
    build keys. The check always writes a verdict; it is fetched back to
    ``<speed_check_results_dir>/<host>/verdict.json`` (the previous run's copy is removed when
    the deploy is planned) and printed as a table, then a verdict with ``ok: false`` fails the
    host with its failures.

    **Example:**

    .. code:: python

        from deploys.speed_check import speed_check

        speed_check(expect=["tensorflow", "torch"])
    """
    data.check_host_data(host, DEFAULTS)
    _check_values()
    unknown = sorted(set(expect) - set(FRAMEWORKS))
    if unknown:
        raise DeployError(f"{host.name}: speed_check(expect=...): unknown {unknown}")
    python_path = _python()
    results_dir = host.data.speed_check_results_dir
    options = _options([name for name in FRAMEWORKS if name in expect])
    # Controller-side: a copy from an earlier run must never pass for this run's verdict.
    _local_verdict(results_dir).unlink(missing_ok=True)

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
    upstream = list(after)
    stale = run_when_stale(
        name="Run the speed check (stack changed)",
        python_path=python_path,
        options=options,
        results_dir=results_dir,
        rerun_pending=lambda: _any_changed(upstream),
    )
    rerun = server.shell(
        name="Run the speed check (this run changed the stack)",
        commands=[_command(python_path, options)],
        _if=lambda: _any_changed(upstream) and not stale.did_change(),
    )
    python.call(
        name="Fetch and print the verdict",
        function=_fetch_and_print,
        results_dir=results_dir,
        _if=lambda: stale.did_change() or rerun.did_change(),
    )
    python.call(
        name="Fail the host when its verdict failed",
        function=fail_on_failed_verdict,
        _if=_verdict_failed,
    )
