"""Colab local runtime: Jupyter + jupyter_http_over_ws on 127.0.0.1, behind an SSH tunnel.

Colab's front end ("Connect to a local runtime") talks to a Jupyter server through the
``jupyter_http_over_ws`` server extension. This deploy installs the versions that extension
works with (classic ``notebook`` 6.5.7; see ``deploys/lib/local_runtime.py`` for why) into their
own virtualenv, generates a token on the host (0600 file, never in a command line or in output),
and keeps the server running: a systemd unit where systemd runs, else a small supervisor started
detached with ``setsid`` and tracked by a pidfile (Colab VMs, containers, chroots).

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
from pyinfra.api import DeployError, QuoteString, StringCommand, deploy, operation
from pyinfra.facts.files import Directory, File, FileContents
from pyinfra.facts.server import Users
from pyinfra.operations import files, server
from pyinfra.operations.util import any_changed

from deploys import apt_packages
from deploys.lib import data
from deploys.lib import local_runtime as lr
from facts.local_runtime import RuntimeStatus

logger = logging.getLogger("pyinfra")

PREFIX = "local_runtime_"

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

DEFAULTS: dict[str, Any] = {
    "local_runtime_present": True,
    "local_runtime_port": 8888,
    "local_runtime_user": "root",
    "local_runtime_notebook_dir": "",
    "local_runtime_venv": "/opt/dlrig/jupyter",
    "local_runtime_python": "python3",
    "local_runtime_apt_packages": ["python3-venv", "ca-certificates"],
    "local_runtime_packages": [
        "notebook==6.5.7",
        "jupyter_http_over_ws==0.0.8",
        "setuptools>=60,<85",
    ],
    "local_runtime_system_site_packages": False,
    "local_runtime_pip_cert": "auto",
    "local_runtime_supervisor": "auto",
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
    "local_runtime_venv": "Virtualenv holding Jupyter and the extension (rebuilt when the "
    "package list, interpreter, system-site-packages or pip CA bundle change).",
    "local_runtime_python": "Interpreter the venv is made from.",
    "local_runtime_apt_packages": "APT packages installed first (venv support, CA bundle).",
    "local_runtime_packages": (
        "pip specs for the venv. jupyter_http_over_ws needs the classic server (notebook<7) "
        "and, on Python >= 3.12, setuptools for its distutils import."
    ),
    "local_runtime_system_site_packages": (
        "Make the venv with --system-site-packages, so kernels see frameworks installed into the "
        "system Python (pip may then reuse system copies of Jupyter's dependencies)."
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
}

# Makes the venv from scratch and installs the packages; the install key is written last, so an
# interrupted install is redone. Arguments: venv, python, system-site (1/0), cert, key, specs...
_INSTALL_VENV = r"""
set -eu
venv=$1 python=$2 system=$3 cert=$4 key=$5
shift 5
rm -f "$venv/.dlrig-install-key"
if [ "$system" = 1 ]; then
  "$python" -m venv --clear --system-site-packages "$venv"
else
  "$python" -m venv --clear "$venv"
fi
if [ -n "$cert" ]; then
  printf '[global]\ncert = %s\n' "$cert" > "$venv/pip.conf"
fi
"$venv/bin/pip" install --no-input --disable-pip-version-check --progress-bar off "$@"
printf '%s\n' "$key" > "$venv/.dlrig-install-key.tmp"
mv "$venv/.dlrig-install-key.tmp" "$venv/.dlrig-install-key"
"""

# Writes a fresh random token (48 hex digits, no newline) readable only by its owner. The token
# lives in a shell variable and the file only: never in a command line or any output.
_NEW_TOKEN = r"""
set -eu
umask 077
token=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
[ "${#token}" -eq 48 ]
printf '%s' "$token" > "$1.tmp"
chown "$2" "$1.tmp"
mv "$1.tmp" "$1"
"""


@operation()
def venv(
    path: str,
    python: str,
    packages: list[str],
    system_site_packages: bool = False,
    pip_cert: str = "auto",
):
    """
    Make a virtualenv holding exactly ``packages``, rebuilt only when its install key changes.

    + path: the venv directory
    + python: interpreter to make it from
    + packages: pip requirement specs
    + system_site_packages: give the venv the system site-packages too
    + pip_cert: CA bundle for pip (``auto``: the system bundle when it exists; ``''``: certifi)

    The install key (packages, interpreter, flags, CA bundle) is written to
    ``<venv>/.dlrig-install-key`` as the last step.

    **Example:**

    .. code:: python

        venv(path="/opt/dlrig/jupyter", python="python3", packages=["notebook==6.5.7"])
    """
    cert = pip_cert
    if cert == "auto":
        cert = SYSTEM_CA_BUNDLE if host.get_fact(File, path=SYSTEM_CA_BUNDLE) else ""
    key = lr.install_key(packages, python, system_site_packages, cert)
    recorded = host.get_fact(FileContents, path=f"{path}/.dlrig-install-key") or []
    if recorded and recorded[0].strip() == key:
        host.noop(f"venv {path} holds {', '.join(packages)}")
        return
    yield StringCommand(
        "sh",
        "-c",
        QuoteString(_INSTALL_VENV),
        "install-venv",
        QuoteString(path),
        QuoteString(python),
        "1" if system_site_packages else "0",
        QuoteString(cert),
        key,
        *(QuoteString(p) for p in packages),
    )


@operation()
def token(path: str, user: str, group: str):
    """
    Make sure a token file holds a random token, mode 0600, owned by the runtime's user.

    + path: the token file; an existing token (at least 32 characters) is kept
    + user: owner of the file
    + group: its group

    The token is generated on the host and never leaves it through pyinfra: not in a
    command line, not in output (even at ``-vvv``).

    **Example:**

    .. code:: python

        token(path="/etc/dlrig/local_runtime/token", user="root", group="root")
    """
    info = host.get_fact(File, path=path)
    if not info or info["size"] < lr.MIN_TOKEN_CHARS:
        yield StringCommand(
            "sh", "-c", QuoteString(_NEW_TOKEN), "new-token", QuoteString(path), f"{user}:{group}"
        )
        return
    if info["user"] == user and info["group"] == group and info["mode"] == 600:
        host.noop(f"{path} holds a token")
        return
    yield from files.file._inner(path=path, user=user, group=group, mode="600")


@operation()
def runtime(venv: str, supervisor: str, port: int, present: bool = True):
    """
    Start, restart or stop the local runtime, deciding from what its running instance recorded.

    + venv: the runtime's venv (locates its layout)
    + supervisor: ``systemd`` or ``process``
    + port: the port it listens on (the start waits until it answers)
    + present: False stops it

    Running with the hash of the current files: nothing to do. Running with another hash:
    stop, then start. Not running: start, then wait until it listens.

    **Example:**

    .. code:: python

        runtime(venv="/opt/dlrig/jupyter", supervisor="process", port=8888)
    """
    layout = lr.Layout(venv)
    status = host.get_fact(RuntimeStatus, venv=venv, supervisor=supervisor)
    if not present:
        if status["running"]:
            yield StringCommand("sh", "-c", QuoteString(lr.stop_script(layout, supervisor)))
        else:
            host.noop("the local runtime is not running")
        return
    if status["running"] and status["current"] and status["instance"] == status["current"]:
        host.noop("the local runtime runs with the current configuration")
        return
    if status["running"]:
        yield StringCommand("sh", "-c", QuoteString(lr.stop_script(layout, supervisor)))
    yield StringCommand("sh", "-c", QuoteString(lr.start_script(layout, supervisor, port)))


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
    ``local_runtime_venv``, ``local_runtime_packages``, ``local_runtime_supervisor``, … The
    server allows the origin ``https://colab.research.google.com`` with credentials, never
    retries another port, and reads its token from ``/etc/dlrig/local_runtime/token`` (0600).
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

    if values["local_runtime_apt_packages"]:
        apt_packages.present(
            name="Install venv support and the CA bundle",
            packages=values["local_runtime_apt_packages"],
            cache_time=86400,
        )
    venv(
        name="Install Jupyter and jupyter_http_over_ws into their venv",
        path=venv_path,
        python=values["local_runtime_python"],
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
    token(name="Generate the runtime's token", path=layout.token, user=user, group=group)
    files.put(
        name="Write the Jupyter config",
        src=io.StringIO(lr.render_config(port, notebook_dir, user == "root")),
        dest=layout.config,
        mode="644",
    )
    files.put(
        name="Write the runtime's launcher",
        src=io.StringIO(lr.render_launcher(layout, port, home, notebook_dir, supervisor)),
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
        f"{host.print_prefix}Colab local runtime on 127.0.0.1:{port} ({supervisor}). "
        f"Tunnel: ssh -N -L {port}:127.0.0.1:{port} <this host>; then give Colab the URL in "
        f"{layout.connection_url} (it holds the token: sudo cat it on the host)."
    )
