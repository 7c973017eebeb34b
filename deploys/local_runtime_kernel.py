"""The local runtime's stack kernel step: Colab's ``python3`` kernel runs the stack's interpreter.

``ipykernel`` is installed into the plan's target interpreter (``/opt/dlrig/venv/bin/python``
on servers) and a kernelspec named ``python3`` is written where the launcher's ``JUPYTER_PATH``
finds it first; why that name and that place: ``deploys/lib/local_runtime_kernel.py``.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, QuoteString, StringCommand, operation

from deploys.lib import local_runtime_kernel as kernel
from deploys.lib.local_runtime import KERNEL_NAME
from deploys.local_runtime_ops import resolve_pip_cert
from facts.local_runtime_kernel import StackKernelState

# Writes a file atomically, mode 0644, making its directory. Arguments: path, content.
_WRITE_FILE = r"""
set -eu
umask 022
mkdir -p "$(dirname "$1")"
printf '%s' "$2" > "$1.tmp"
mv "$1.tmp" "$1"
"""


@operation()
def stack_kernel(python: str, spec: str, pip_cert: str = "auto"):
    """
    Make a Jupyter kernel run ``python``: ipykernel installed there, its kernelspec written.

    + python: the stack's interpreter (the plan's ``python.target``)
    + spec: the kernelspec to write (``<lib_dir>/jupyter/kernels/python3/kernel.json``)
    + pip_cert: CA bundle for pip (``auto``: the system bundle when it exists; ``''``: certifi)

    ipykernel (``deploys.lib.local_runtime_kernel.KERNEL_REQUIREMENT``) is installed only when
    the interpreter does not find one; the kernelspec is written only when it differs. The
    interpreter is looked at when the step runs, after the pip stack made it; missing then, the
    step fails naming it.

    **Example:**

    .. code:: python

        stack_kernel(python="/opt/dlrig/venv/bin/python",
                     spec="/usr/local/lib/dlrig/local_runtime/jupyter/kernels/python3/kernel.json")
    """
    state = host.get_fact(StackKernelState, python=python, spec=spec)
    if not state["python"] and host.state.is_executing:
        raise OperationError(
            f"the stack interpreter {python} does not exist: install the stack first (the "
            "pip stack comes before the local runtime in deploys/gpu_server.py), or set "
            "local_runtime_stack_kernel=False for the Jupyter venv's own Python"
        )
    # A venv's bin/python stays as it is (resolving its symlink would leave the venv).
    path = python if python.startswith("/") else (state["python"] or python)
    if state["ipykernel"] and state["spec"] == kernel.kernel_sha256(path):
        host.noop(f"the {KERNEL_NAME} kernel runs {path} (ipykernel installed)")
        return
    if not state["ipykernel"]:
        cert = resolve_pip_cert(pip_cert)
        yield StringCommand(
            QuoteString(path),
            "-m pip install --no-input --disable-pip-version-check --progress-bar off",
            *(["--cert", QuoteString(cert)] if cert else []),
            QuoteString(kernel.KERNEL_REQUIREMENT),
        )
    if state["spec"] != kernel.kernel_sha256(path):
        yield StringCommand(
            "sh",
            "-c",
            QuoteString(_WRITE_FILE),
            "write-file",
            QuoteString(spec),
            QuoteString(kernel.render_kernel_spec(path)),
        )
