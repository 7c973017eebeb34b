"""
Print one table per host of everything dlrig's facts know: system, Colab, GPUs, NVIDIA driver,
CUDA toolkits, cuDNN, compilers and the Python frameworks. Changes nothing on the hosts.

**Example:**

.. code:: sh

    pyinfra @local deploys/report.py
    pyinfra inventories/my_servers.py deploys/report.py
"""

from __future__ import annotations

import sys

from pyinfra import host
from pyinfra.api import operation

from deploys.lib.report import REPORT_PATHS, format_report
from facts.cuda import CudaToolkits, Cudnn
from facts.gpu import NvidiaDriver, NvidiaGpus
from facts.platform import ColabRuntime, SystemSummary
from facts.python import PythonEnv
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


facts = {
    "system": host.get_fact(SystemSummary, paths=list(REPORT_PATHS)),
    "colab": host.get_fact(ColabRuntime),
    "gpus": host.get_fact(NvidiaGpus),
    "driver": host.get_fact(NvidiaDriver),
    "cuda": host.get_fact(CudaToolkits),
    "cudnn": host.get_fact(Cudnn),
    "compilers": host.get_fact(HostCompilers),
    "python": host.get_fact(PythonEnv, python="python3"),
}
report = format_report(host.name, facts)
# pyinfra writes its own progress to stderr; keep stdout free for --json.
print(report, file=sys.stderr, flush=True)
facts_reported(name="Print the dlrig facts report", title=report.splitlines()[0])
