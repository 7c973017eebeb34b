"""
Print one table per host of everything dlrig's facts know: system, Colab, GPUs, NVIDIA driver,
CUDA toolkits, cuDNN, compilers, the plan's interpreter with its frameworks, Caffe and the last
speed check verdict. Changes nothing on the hosts, and asks nothing: once every host's table
is printed, the run ends (pyinfra would otherwise prompt "Press enter to execute..." for the
report's single no-op, and without stdin, as in a notebook cell, die with ``EOFError``).

**Example:**

.. code:: sh

    pyinfra @local deploys/report.py
    pyinfra inventories/my_servers.py deploys/report.py
"""

from __future__ import annotations

import sys
from typing import Any

from pyinfra import host, state
from pyinfra.api import DeployError, operation

from deploys.caffe import DEFAULTS as CAFFE_DEFAULTS
from deploys.caffe import KEY_NAME, PTH_NAME
from deploys.lib.report import REPORT_PATHS, format_report
from deploys.lib.report_cli import REPORT_OP_NAME, end_run_after_report
from deploys.pip_stack import target_python
from deploys.speed_check import VERDICT
from facts.cuda import CudaToolkits, Cudnn
from facts.gpu import NvidiaDriver, NvidiaGpus
from facts.platform import ColabRuntime, SystemSummary
from facts.python import PythonEnv
from facts.report import ReportState
from facts.toolchain import HostCompilers


@operation()
def facts_reported(title: str):
    """
    Record that the facts report was printed for this host; never changes anything.

    + title: the report's title line, shown as the no-op reason

    **Example:**

    .. code:: python

        facts_reported(title="dlrig facts: @local")
    """
    host.noop(f"{title} (printed above)")
    yield from ()


def _interpreter() -> tuple[str | None, str | None]:
    """The plan's interpreter, or None and why the plan did not resolve (the report still
    prints: a host preflight rejects is one to look at)."""
    try:
        return target_python(), None
    except DeployError as e:
        return None, str(e).removeprefix(f"{host.name}: ")


interpreter, plan_error = _interpreter()
python_env = host.get_fact(PythonEnv, python=interpreter) if interpreter else None
facts: dict[str, Any] = {
    "system": host.get_fact(SystemSummary, paths=list(REPORT_PATHS)),
    "colab": host.get_fact(ColabRuntime),
    "gpus": host.get_fact(NvidiaGpus),
    "driver": host.get_fact(NvidiaDriver),
    "cuda": host.get_fact(CudaToolkits),
    "cudnn": host.get_fact(Cudnn),
    "compilers": host.get_fact(HostCompilers),
    "interpreter": interpreter,
    "plan_error": plan_error,
    "python": python_env,
    "state": host.get_fact(
        ReportState,
        caffe_prefix=host.data.get("caffe_prefix") or CAFFE_DEFAULTS["caffe_prefix"],
        key_name=KEY_NAME,
        pth_name=PTH_NAME,
        verdict=VERDICT,
        site_packages=(python_env or {}).get("site_packages") or [],
    ),
}
report = format_report(host.name, facts)
# pyinfra writes its own progress to stderr; keep stdout free for --json.
print(report, file=sys.stderr, flush=True)
facts_reported(name=REPORT_OP_NAME, title=report.splitlines()[0])
end_run_after_report(state, host.name)
