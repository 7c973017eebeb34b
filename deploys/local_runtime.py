"""Colab local runtime: Jupyter + jupyter_http_over_ws on 127.0.0.1, behind an SSH tunnel.

Colab's front end ("Connect to a local runtime") talks to a Jupyter server through the
``jupyter_http_over_ws`` server extension. This deploy installs the versions that extension
works with (classic ``notebook`` 6.5.7; see ``deploys/lib/local_runtime.py`` for why) into their
own virtualenv, generates a token on the host (0600 file, never in a command line or in output),
and keeps the server running: a systemd unit where systemd runs, else a small supervisor started
detached with ``setsid`` and tracked by a pidfile (Colab VMs, containers, chroots).

Both interpreters come from the plan (``deploys.preflight.plan_for``): Jupyter's venv is made
from ``python.base`` (the host's, e.g. ``/usr/bin/python3``); the kernel Colab gets runs
``python.target`` (the stack's, e.g. ``/opt/dlrig/venv/bin/python``), not Jupyter's:
``ipykernel`` is installed there and a kernelspec named ``python3`` (the name Colab asks for)
points at it; see ``deploys/local_runtime_kernel.py``.

The operations are in ``deploys/local_runtime_ops.py`` (venv, token, runtime) and
``deploys/local_runtime_kernel.py`` (the stack kernel); this module holds the data keys and the
order of the steps.

Idempotence and restarts: the launcher records a hash of the files it started from (config,
token, install key, launcher, unit or supervisor) when it starts; the ``runtime`` operation
compares it with the hash of those files now, and restarts only when they differ or nothing
runs.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, deploy
from pyinfra.facts.files import Directory
from pyinfra.facts.server import Users
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from deploys import apt_packages
from deploys.lib import data
from deploys.lib import local_runtime as lr
from deploys.lib.local_runtime_kernel import uses_stack_kernel
from deploys.local_runtime_kernel import stack_kernel
from deploys.local_runtime_ops import SYSTEM_CA_BUNDLE, runtime, token, venv
from deploys.preflight import plan_for

logger = logging.getLogger("pyinfra")

PREFIX = "local_runtime_"

DEFAULTS: dict[str, Any] = {
    "local_runtime_present": True,
    "local_runtime_port": 8888,
    "local_runtime_user": "root",
    "local_runtime_notebook_dir": "",
    "local_runtime_venv": "/opt/dlrig/jupyter",
    "local_runtime_apt_packages": ["python3-venv", "ca-certificates"],
    "local_runtime_packages": [
        "notebook==6.5.7",
        "jupyter_http_over_ws==0.0.8",
        "setuptools>=60,<85",
    ],
    "local_runtime_system_site_packages": False,
    "local_runtime_pip_cert": "auto",
    "local_runtime_supervisor": "auto",
    "local_runtime_stack_kernel": True,
}

DOCS: dict[str, str] = {
    "local_runtime_present": (
        "Run the Colab local runtime; False stops it and removes its venv, config, token and unit."
    ),
    "local_runtime_port": (
        "Port on 127.0.0.1 (port_retries=0: a busy port is an error). Tunnel it with "
        "ssh -N -L <port>:127.0.0.1:<port> <host>; a change restarts the runtime."
    ),
    "local_runtime_user": "Existing user the Jupyter server and its kernels run as.",
    "local_runtime_notebook_dir": "Directory Jupyter serves; empty means the user's home.",
    "local_runtime_venv": (
        "Virtualenv holding Jupyter and the extension, made from the plan's interpreter "
        "(python.base: preflight_python) and rebuilt when the package list, that interpreter, "
        "system-site-packages or pip CA bundle change."
    ),
    "local_runtime_apt_packages": "APT packages installed first (venv support, CA bundle).",
    "local_runtime_packages": (
        "pip specs for the venv. jupyter_http_over_ws needs the classic server (notebook<7) "
        "and, on Python >= 3.12, setuptools for its distutils import."
    ),
    "local_runtime_system_site_packages": (
        "Make the venv with --system-site-packages, so its own kernel sees frameworks installed "
        "into the system Python (pip may then reuse system copies of Jupyter's dependencies); "
        "for local_runtime_stack_kernel=False."
    ),
    "local_runtime_pip_cert": (
        "CA bundle pip in the venv uses (written to <venv>/pip.conf): 'auto' = "
        f"{SYSTEM_CA_BUNDLE} when it exists (TLS-intercepting proxies), '' = pip's certifi, "
        "or a path."
    ),
    "local_runtime_supervisor": (
        "'systemd' (unit dlrig-local-runtime.service), 'process' (setsid supervisor + pidfile, "
        "for hosts without systemd: Colab VM, containers, chroots) or 'auto' "
        "(systemd when /run/systemd/system exists)."
    ),
    "local_runtime_stack_kernel": (
        "Give Colab a kernel (named python3) running the stack's interpreter (the plan's: "
        "/opt/dlrig/venv/bin/python on servers), with ipykernel installed into it, so it "
        "imports torch, tensorflow and caffe; the interpreter must exist when the step runs "
        "(the pip stack comes first). False: the Jupyter venv's own Python."
    ),
}


def _values() -> dict[str, Any]:
    values = {key: host.data.get(key) for key in DEFAULTS}
    errors = lr.check(values)
    if errors:
        raise DeployError(f"{host.name}: " + "; ".join(errors))
    return values


def _supervisor(choice: str) -> str:
    if choice != "auto":
        return choice
    return "systemd" if host.get_fact(Directory, path="/run/systemd/system") else "process"


@deploy("Colab local runtime", data_defaults=DEFAULTS)
def local_runtime() -> None:
    """
    Run a Jupyter server Colab can use as its local runtime, on 127.0.0.1 with a token.

    Data keys (see README): ``local_runtime_port``, ``local_runtime_user``,
    ``local_runtime_venv``, ``local_runtime_packages``, ``local_runtime_supervisor``,
    ``local_runtime_stack_kernel``, … The server allows the origin
    ``https://colab.research.google.com`` with credentials, never retries another port, and
    reads its token from ``/etc/dlrig/local_runtime/token`` (0600). Its venv is made from the
    plan's ``python.base``; its ``python3`` kernel runs the plan's ``python.target`` (the
    stack's interpreter), which must exist by then: in the entry deploys the pip stack runs
    first.
    The connection URL (it holds the token) is written to
    ``/var/lib/dlrig/local_runtime/connection-url`` (0600); the run prints where, once.

    **Example:**

    .. code:: python

        from deploys.local_runtime import local_runtime

        local_runtime()
    """
    data.check_host_data(host, DEFAULTS)
    values = _values()
    venv_path = values["local_runtime_venv"]
    layout = lr.Layout(venv_path)
    supervisor = _supervisor(values["local_runtime_supervisor"])
    port = values["local_runtime_port"]

    if not values["local_runtime_present"]:
        runtime(
            name="Stop the Colab local runtime",
            venv=venv_path,
            supervisor=supervisor,
            port=port,
            present=False,
        )
        if supervisor == "systemd":
            wants = files.link(
                name="Disable the local runtime's systemd unit",
                path=f"/etc/systemd/system/multi-user.target.wants/{lr.UNIT_NAME}",
                present=False,
            )
            unit = files.file(
                name="Remove the local runtime's systemd unit",
                path=layout.unit_path,
                present=False,
            )
            server.shell(
                name="Reload systemd (unit removed)",
                commands=["systemctl daemon-reload"],
                _if=any_changed(wants, unit),
            )
        for path in (layout.config_dir, layout.state_dir, layout.lib_dir, venv_path):
            files.directory(name=f"Remove {path}", path=path, present=False)
        return

    user = values["local_runtime_user"]
    account = host.get_fact(Users).get(user)
    if account is None:
        raise DeployError(f"{host.name}: local_runtime_user {user!r} does not exist on the host")
    group = account["group"]
    home = account["home"] or "/"
    notebook_dir = values["local_runtime_notebook_dir"] or home
    interpreter = plan_for(host).python
    assert interpreter is not None  # preflight fails without one
    stack_python = None
    if values["local_runtime_stack_kernel"]:
        stack_python = interpreter.target
        if not uses_stack_kernel(stack_python, venv_path):
            stack_python = None  # the Jupyter venv's own Python is the stack's

    if values["local_runtime_apt_packages"]:
        apt_packages.present(
            name="Install venv support and the CA bundle",
            packages=values["local_runtime_apt_packages"],
            cache_time=86400,
        )
    venv(
        name="Install Jupyter and jupyter_http_over_ws into their venv",
        path=venv_path,
        python=interpreter.base,
        packages=values["local_runtime_packages"],
        system_site_packages=values["local_runtime_system_site_packages"],
        pip_cert=values["local_runtime_pip_cert"],
    )
    files.directory(name="Make the runtime's config directory", path=layout.config_dir, mode="755")
    files.directory(
        name="Make the runtime's state directory",
        path=layout.state_dir,
        user=user,
        group=group,
        mode="700",
    )
    files.directory(name="Make the runtime's script directory", path=layout.lib_dir, mode="755")
    if stack_python:
        stack_kernel(
            name="Give Colab a kernel running the stack's interpreter",
            python=stack_python,
            spec=layout.kernel_spec,
            pip_cert=values["local_runtime_pip_cert"],
        )
    else:
        files.directory(
            name="Remove the stack kernel (Jupyter's own Python serves)",
            path=layout.jupyter_path,
            present=False,
        )
    token(name="Generate the runtime's token", path=layout.token, user=user, group=group)
    files.put(
        name="Write the Jupyter config",
        src=io.StringIO(lr.render_config(port, notebook_dir, user == "root", bool(stack_python))),
        dest=layout.config,
        mode="644",
    )
    files.put(
        name="Write the runtime's launcher",
        src=io.StringIO(
            lr.render_launcher(layout, port, home, notebook_dir, supervisor, bool(stack_python))
        ),
        dest=layout.launcher,
        mode="755",
    )
    if supervisor == "systemd":
        files.put(
            name="Write the systemd unit",
            src=io.StringIO(lr.render_unit(layout, user)),
            dest=layout.unit_path,
            mode="644",
        )
    else:
        files.put(
            name="Write the runtime's supervisor",
            src=io.StringIO(lr.render_supervisor(layout, user)),
            dest=layout.supervisor,
            mode="755",
        )
    runtime(
        name="Run the Colab local runtime (restart on config change)",
        venv=venv_path,
        supervisor=supervisor,
        port=port,
    )
    logger.info(
        f"{host.print_prefix}Colab local runtime on 127.0.0.1:{port} ({supervisor}, kernel: "
        f"{stack_python or venv_path + '/bin/python'}). "
        f"Tunnel: ssh -N -L {port}:127.0.0.1:{port} <this host>; then give Colab the URL in "
        f"{layout.connection_url} (it holds the token: sudo cat it on the host)."
    )
