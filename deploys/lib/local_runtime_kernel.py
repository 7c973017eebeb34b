"""Pure logic of the local runtime's stack kernel: when one is needed, its kernelspec, and the
shell that reads its state on a host.

Jupyter's venv holds Jupyter, not the stack, so its own ``python3`` kernel cannot
``import torch, tensorflow, caffe``. The runtime serves instead a kernelspec named ``python3``
whose ``argv`` runs the stack's interpreter (``ipykernel`` installed there), in a directory the
launcher puts first on ``JUPYTER_PATH``. It is named ``python3`` because that is the name
Colab notebooks carry in their metadata (``kernelspec.name``) and ask the server for; a
default kernel alone would not be used (googlecolab/jupyter_http_over_ws#28,
jupyter/notebook#3338). ``KernelSpecManager.kernel_dirs`` is not configurable in
jupyter_client 7, and a venv's own ``share/jupyter`` (where ipykernel's wheel puts its
``python3`` spec) comes before ``JUPYTER_DATA_DIR`` in jupyter_core 5, so ``JUPYTER_PATH``
(searched first) it is. Kernelspecs are read when a kernel starts: a changed ``kernel.json``
needs no restart of the server.

Nothing here touches pyinfra state: ``deploys/local_runtime_kernel.py`` is the step,
``facts/local_runtime_kernel.py`` the fact; the kernel's name and directory are part of the
runtime's layout (``deploys/lib/local_runtime.py``).
"""

from __future__ import annotations

import hashlib
import json
import shlex

from deploys.lib.local_runtime import SYSTEM_PATH

# What the stack's interpreter needs to run the kernel (the 6.x line of the server's own
# ipykernel; notebook 6.5.7 pins jupyter_client < 8), and the name Jupyter shows for it.
KERNEL_REQUIREMENT = "ipykernel>=6,<7"
KERNEL_DISPLAY_NAME = "Python 3 (dlrig stack)"


def uses_stack_kernel(python: str, venv: str) -> bool:
    """Whether the stack's interpreter needs a kernel of its own: not when it is the Jupyter
    venv's own Python (its native kernel is that interpreter already)."""
    venv = venv.rstrip("/")
    return python.rstrip("/") not in (f"{venv}/bin/python", f"{venv}/bin/python3")


def render_kernel_spec(python: str) -> str:
    """The stack kernel's ``kernel.json``: ipykernel in ``python`` (an absolute path, a venv's
    ``bin/python`` kept as it is), with that interpreter's directory first on ``PATH`` so that
    ``!pip`` and other commands in a cell find the stack's tools, not Jupyter's venv."""
    bindir = python.rsplit("/", 1)[0] or "/"
    path = SYSTEM_PATH if bindir in SYSTEM_PATH.split(":") else f"{bindir}:{SYSTEM_PATH}"
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "python",
        "env": {"PATH": path},
        "metadata": {"debugger": True, "dlrig": "deploys/local_runtime.py"},
    }
    return json.dumps(spec, indent=1, sort_keys=True) + "\n"


def kernel_sha256(python: str) -> str:
    """The SHA-256 of ``render_kernel_spec(python)``, as ``sha256sum`` prints it."""
    return hashlib.sha256(render_kernel_spec(python).encode()).hexdigest()


def kernel_state_script() -> str:
    """Shell (arguments: interpreter, kernel.json) printing ``python=<path or empty>``,
    ``ipykernel=yes|no`` and ``spec=<sha256 of kernel.json or empty>``. One interpreter start,
    nothing imported: ``importlib.util.find_spec`` only looks for ipykernel."""
    find = "import importlib.util as u, sys; sys.exit(u.find_spec('ipykernel') is None)"
    return (
        'p=$(command -v "$1" 2>/dev/null) && [ -x "$p" ] || p=; echo "python=$p"; '
        f'if [ -n "$p" ] && "$p" -c {shlex.quote(find)} 2>/dev/null; '
        "then echo ipykernel=yes; else echo ipykernel=no; fi; "
        'if [ -f "$2" ]; then echo "spec=$(sha256sum < "$2" | cut -d" " -f1)"; '
        "else echo spec=; fi"
    )


def parse_kernel_state(lines: list[str]) -> dict[str, str | bool | None]:
    """Parse ``kernel_state_script`` output into ``{python, ipykernel, spec}``."""
    out: dict[str, str | bool | None] = {"python": None, "ipykernel": False, "spec": None}
    for line in lines:
        key, _, value = line.strip().partition("=")
        if key == "ipykernel":
            out["ipykernel"] = value == "yes"
        elif key in ("python", "spec"):
            out[key] = value or None
    return out
