"""The Colab local runtime's operations: Jupyter's venv, the token, and the running server.

``deploys/local_runtime.py`` calls them in order; the stack kernel's step is
``deploys/local_runtime_kernel.py``. Each reads what the host holds and does nothing when it
matches; the rendered scripts and files come from ``deploys/lib/local_runtime.py``.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, operation
from pyinfra.facts.files import File, FileContents
from pyinfra.operations import files

from deploys.lib import local_runtime as lr
from facts.local_runtime import RuntimeStatus

SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

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


def resolve_pip_cert(value: str) -> str:
    """``local_runtime_pip_cert`` resolved: ``auto`` is the system bundle when it exists."""
    if value == "auto":
        return SYSTEM_CA_BUNDLE if host.get_fact(File, path=SYSTEM_CA_BUNDLE) else ""
    return value


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
    + python: interpreter to make it from (the deploy gives the plan's ``python.base``)
    + packages: pip requirement specs
    + system_site_packages: give the venv the system site-packages too
    + pip_cert: CA bundle for pip (``auto``: the system bundle when it exists; ``''``: certifi)

    The install key (packages, interpreter, flags, CA bundle) is written to
    ``<venv>/.dlrig-install-key`` as the last step.

    **Example:**

    .. code:: python

        venv(path="/opt/dlrig/jupyter", python="/usr/bin/python3", packages=["notebook==6.5.7"])
    """
    cert = resolve_pip_cert(pip_cert)
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
