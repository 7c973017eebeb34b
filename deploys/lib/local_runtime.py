"""Pure logic of the Colab local runtime deploy: checks, install key, rendered files.

The runtime is a classic Jupyter Notebook server with the ``jupyter_http_over_ws`` server
extension, which Colab's front end talks to through ``/http_over_websocket``. Nothing here
touches pyinfra state; ``deploys/local_runtime.py`` puts the rendered files on hosts.

Versions (read from the extension's 0.0.8 wheel, checked by the e2e test):

- ``jupyter_http_over_ws`` 0.0.8 (latest; its handler version is 0.0.7) subclasses
  ``notebook.base.handlers.IPythonHandler``. Notebook 7 is a JupyterLab-based app on
  jupyter_server and has no ``notebook.base`` — the extension cannot even be imported there.
  So the server is ``notebook==6.5.7``, the last classic release (it pulls
  ``jupyter_client<8``, hence ``ipykernel`` 6.x).
- the extension does ``from distutils import version``: ``distutils`` is gone from Python 3.12
  (Ubuntu 24.04, today's Colab). setuptools' ``distutils`` shim (setuptools >= 60, active in a
  venv through its ``distutils-precedence.pth``) still provides ``StrictVersion``; without
  setuptools the import fails with ``No module named 'distutils'``. Tested with 84.2.1.
- the token comes from ``JUPYTER_TOKEN_FILE`` (notebook >= 6.1), read verbatim, so the token
  file holds no trailing newline and the launcher refuses to start on a short or empty one.

The stack kernel (a kernelspec named ``python3`` running the stack's interpreter, first on the
launcher's ``JUPYTER_PATH``): ``deploys/lib/local_runtime_kernel.py``; its name and directory
are part of the layout here.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass

COLAB_ORIGIN = "https://colab.research.google.com"
BIND_ADDRESS = "127.0.0.1"
UNIT_NAME = "dlrig-local-runtime.service"
SUPERVISORS = ("auto", "systemd", "process")
MIN_TOKEN_CHARS = 32
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The stack kernel's name: the one Colab notebooks ask for (deploys/lib/local_runtime_kernel.py).
KERNEL_NAME = "python3"

_USER = re.compile(r"^[a-z_][a-z0-9_-]*\$?$")
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],<>=!~ ]*$")


@dataclass(frozen=True)
class Layout:
    """Where the runtime's files live on a host."""

    venv: str
    config_dir: str = "/etc/dlrig/local_runtime"
    state_dir: str = "/var/lib/dlrig/local_runtime"
    lib_dir: str = "/usr/local/lib/dlrig/local_runtime"
    unit_path: str = f"/etc/systemd/system/{UNIT_NAME}"

    @property
    def config(self) -> str:
        return f"{self.config_dir}/jupyter_notebook_config.json"

    @property
    def token(self) -> str:
        return f"{self.config_dir}/token"

    @property
    def install_key(self) -> str:
        return f"{self.venv}/.dlrig-install-key"

    @property
    def jupyter_path(self) -> str:
        """The launcher's ``JUPYTER_PATH``: holds the stack kernel's spec."""
        return f"{self.lib_dir}/jupyter"

    @property
    def kernel_spec(self) -> str:
        return f"{self.jupyter_path}/kernels/{KERNEL_NAME}/kernel.json"

    @property
    def launcher(self) -> str:
        return f"{self.lib_dir}/launch"

    @property
    def supervisor(self) -> str:
        return f"{self.lib_dir}/supervise"

    @property
    def instance_hash(self) -> str:
        return f"{self.state_dir}/instance.hash"

    @property
    def pidfile(self) -> str:
        return f"{self.state_dir}/supervisor.pid"

    @property
    def log(self) -> str:
        return f"{self.state_dir}/runtime.log"

    @property
    def connection_url(self) -> str:
        return f"{self.state_dir}/connection-url"


def check(values: dict) -> list[str]:
    """Return one error line (naming the data key) per bad local_runtime value."""
    errors = []
    port = values["local_runtime_port"]
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        errors.append(f"local_runtime_port must be a TCP port 1-65535, got {port!r}")
    user = values["local_runtime_user"]
    if not isinstance(user, str) or not _USER.match(user):
        errors.append(f"local_runtime_user {user!r} is not a valid user name")
    for key in ("local_runtime_venv", "local_runtime_notebook_dir"):
        value = values[key]
        if key == "local_runtime_notebook_dir" and value == "":
            continue
        if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
            errors.append(f"{key} must be an absolute path, got {value!r}")
    supervisor = values["local_runtime_supervisor"]
    if supervisor not in SUPERVISORS:
        errors.append(f"local_runtime_supervisor must be one of {SUPERVISORS}, got {supervisor!r}")
    packages = values["local_runtime_packages"]
    if (
        not isinstance(packages, list)
        or not packages
        or not all(isinstance(p, str) and _PACKAGE.match(p) for p in packages)
    ):
        errors.append(f"local_runtime_packages must be a non-empty list of pip specs: {packages!r}")
    if not isinstance(values["local_runtime_stack_kernel"], bool):
        errors.append(
            f"local_runtime_stack_kernel must be True or False, got "
            f"{values['local_runtime_stack_kernel']!r}"
        )
    cert = values["local_runtime_pip_cert"]
    if not isinstance(cert, str) or not (cert in ("auto", "") or cert.startswith("/")):
        errors.append(
            f"local_runtime_pip_cert must be 'auto', '' or an absolute path, got {cert!r}"
        )
    return errors


def install_key(packages: list[str], python: str, system_site_packages: bool, cert: str) -> str:
    """What the venv was built from; a different key rebuilds it."""
    material = json.dumps(
        {"packages": packages, "python": python, "system": system_site_packages, "cert": cert},
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def render_config(port: int, notebook_dir: str, allow_root: bool, stack_kernel: bool) -> str:
    """The classic notebook server's JSON config. It holds no secret: the token is a file.

    With ``stack_kernel`` the default kernel is named explicitly: the stack kernel's name."""
    config: dict[str, dict[str, object]] = {
        "NotebookApp": {
            "ip": BIND_ADDRESS,
            "port": port,
            "port_retries": 0,
            "open_browser": False,
            "allow_origin": COLAB_ORIGIN,
            "allow_credentials": True,
            "allow_root": allow_root,
            "notebook_dir": notebook_dir,
            "nbserver_extensions": {"jupyter_http_over_ws": True},
        }
    }
    if stack_kernel:
        config["MappingKernelManager"] = {"default_kernel_name": KERNEL_NAME}
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def hashed_files(layout: Layout, supervisor: str) -> list[str]:
    """Files whose contents make up the configuration hash of a running instance."""
    runner = layout.unit_path if supervisor == "systemd" else layout.supervisor
    return [layout.config, layout.token, layout.install_key, layout.launcher, runner]


def render_launcher(
    layout: Layout,
    port: int,
    home: str,
    notebook_dir: str,
    supervisor: str,
    stack_kernel: bool = False,
) -> str:
    """The script that starts Jupyter (as the runtime's user); ``--hash`` prints the config hash.

    Before it execs Jupyter it records the hash of the files it starts from in
    ``instance.hash``: the deploy compares that with the files' hash now to know whether the
    running instance is current. The token is never printed; the connection URL goes to a
    0600 file. With ``stack_kernel``, ``JUPYTER_PATH`` is the stack kernel's directory (found
    before the venv's own ``python3`` kernel); without, it is unset.
    """
    q = shlex.quote
    files = " ".join(q(f) for f in hashed_files(layout, supervisor))
    if stack_kernel:
        jupyter_path = f"export JUPYTER_PATH={q(layout.jupyter_path)}\nunset JUPYTER_TOKEN"
    else:
        jupyter_path = "unset JUPYTER_TOKEN JUPYTER_PATH"
    return f"""#!/bin/sh
# Managed by dlrig (deploys/local_runtime.py): starts the Colab local runtime.
set -eu
confhash() {{
  for f in {files}; do
    [ -r "$f" ] || {{ echo "missing $f" >&2; return 1; }}
  done
  cat {files} | sha256sum | cut -d' ' -f1
}}
if [ "${{1:-}}" = --hash ]; then
  confhash
  exit
fi
token_file={q(layout.token)}
token=$(cat "$token_file")
if [ "${{#token}}" -lt {MIN_TOKEN_CHARS} ] || [ "$(wc -c < "$token_file")" -ne "${{#token}}" ]; then
  echo "refusing to start: $token_file needs >= {MIN_TOKEN_CHARS} chars, no newline" >&2
  exit 1
fi
umask 077
hash=$(confhash)
echo "$hash" > {q(layout.instance_hash)}
printf 'http://{BIND_ADDRESS}:%s/?token=%s\\n' {port} "$token" > {q(layout.connection_url)}
unset token
mkdir -p {q(layout.state_dir + "/jupyter/data")} {q(layout.state_dir + "/jupyter/runtime")}
export HOME={q(home)}
export PATH={q(layout.venv + "/bin")}:{SYSTEM_PATH}
export JUPYTER_CONFIG_DIR={q(layout.config_dir)}
export JUPYTER_DATA_DIR={q(layout.state_dir + "/jupyter/data")}
export JUPYTER_RUNTIME_DIR={q(layout.state_dir + "/jupyter/runtime")}
export JUPYTER_TOKEN_FILE="$token_file"
{jupyter_path}
cd {q(notebook_dir)}
echo "dlrig: starting the Colab local runtime on {BIND_ADDRESS}:{port}"
exec {q(layout.venv + "/bin/jupyter")} notebook
"""


def render_supervisor(layout: Layout, user: str) -> str:
    """Keeps the launcher running where there is no systemd (Colab VM, containers, chroots).

    Started detached (``setsid -f``, so it leads its own process group) by the deploy, which
    stops it by signalling that group. It restarts the launcher 2 s after it exits.
    """
    q = shlex.quote
    if user == "root":
        run = q(layout.launcher)
    else:
        run = (
            f'setpriv --reuid={q(user)} --regid="$(id -g {q(user)})" --init-groups '
            f"-- {q(layout.launcher)}"
        )
    return f"""#!/bin/sh
# Managed by dlrig (deploys/local_runtime.py): keeps the Colab local runtime running.
set -u
echo $$ > {q(layout.pidfile)}
child=
stop() {{
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; wait "$child"; fi
  rm -f {q(layout.pidfile)}
  exit 0
}}
trap stop TERM INT HUP
while :; do
  {run} &
  child=$!
  wait "$child"
  echo "dlrig: runtime exited with status $?; restarting in 2 s"
  child=
  sleep 2 &
  wait $!
done
"""


def render_unit(layout: Layout, user: str) -> str:
    """The systemd unit for servers (``Restart=on-failure``, started at boot)."""
    return f"""# Managed by dlrig (deploys/local_runtime.py).
[Unit]
Description=Colab local runtime (Jupyter + jupyter_http_over_ws on {BIND_ADDRESS})
After=network.target

[Service]
Type=simple
User={user}
ExecStart={layout.launcher}
Restart=on-failure
RestartSec=2
KillMode=control-group

[Install]
WantedBy=multi-user.target
"""


def status_script(layout: Layout, supervisor: str) -> str:
    """Shell that prints ``running=yes|no``, ``instance=<hash>``, ``current=<hash>``."""
    q = shlex.quote
    if supervisor == "systemd":
        running = f"systemctl is-active --quiet {UNIT_NAME} && running=yes"
    else:
        running = (
            f'pid=$(cat {q(layout.pidfile)} 2>/dev/null) && kill -0 "$pid" 2>/dev/null '
            f'&& tr "\\0" " " < "/proc/$pid/cmdline" | grep -q {q(layout.supervisor)} '
            "&& running=yes"
        )
    return (
        f"current=$({q(layout.launcher)} --hash 2>/dev/null) || current=; "
        f"instance=$(cat {q(layout.instance_hash)} 2>/dev/null) || instance=; "
        f"running=no; {running}; "
        'echo "running=$running"; echo "instance=$instance"; echo "current=$current"'
    )


def parse_status(lines: list[str]) -> dict[str, str | bool | None]:
    """Parse ``status_script`` output into ``{running, instance, current}``."""
    out: dict[str, str | bool | None] = {"running": False, "instance": None, "current": None}
    for line in lines:
        key, _, value = line.strip().partition("=")
        if key == "running":
            out["running"] = value == "yes"
        elif key in ("instance", "current"):
            out[key] = value or None
    return out


def wait_script(layout: Layout, port: int, timeout_s: int = 90) -> str:
    """Shell that waits for a fresh instance to record its hash and listen on its port."""
    q = shlex.quote
    probe = (
        f"{q(layout.venv + '/bin/python')} -c "
        + q("import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)")
        + f" {port}"
    )
    return (
        f"i=0; until [ -s {q(layout.instance_hash)} ] && {probe} 2>/dev/null; do "
        f"i=$((i+1)); if [ $i -gt {timeout_s * 2} ]; then "
        f'echo "the local runtime did not come up on port {port}; log tail:" >&2; '
        f"tail -n 30 {q(layout.log)} >&2 2>/dev/null; exit 1; fi; sleep 0.5; done"
    )


def stop_script(layout: Layout, supervisor: str) -> str:
    """Shell that stops the runtime (and its kernels) and waits until it is gone."""
    q = shlex.quote
    if supervisor == "systemd":
        return f"systemctl stop {UNIT_NAME}; rm -f {q(layout.instance_hash)}"
    return (
        f"pid=$(cat {q(layout.pidfile)} 2>/dev/null) || pid=; "
        # alive: exists and is no zombie (a reaped-late supervisor must not stall the stop)
        "alive() { [ \"$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)\" ] "
        "&& [ \"$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)\" != Z ]; }; "
        'if [ -n "$pid" ] && alive "$pid"; then '
        'kill -TERM -"$pid" 2>/dev/null || kill -TERM "$pid"; i=0; '
        'while alive "$pid" && [ $i -lt 60 ]; do i=$((i+1)); sleep 0.5; done; '
        'kill -KILL -"$pid" 2>/dev/null || true; fi; '
        f"rm -f {q(layout.pidfile)} {q(layout.instance_hash)}"
    )


def start_script(layout: Layout, supervisor: str, port: int) -> str:
    """Shell that starts the runtime and waits until it answers."""
    q = shlex.quote
    if supervisor == "systemd":
        start = (
            f"systemctl daemon-reload && systemctl enable --quiet {UNIT_NAME} "
            f"&& systemctl restart {UNIT_NAME}"
        )
    else:
        start = f"setsid -f {q(layout.supervisor)} < /dev/null >> {q(layout.log)} 2>&1"
    return f"rm -f {q(layout.instance_hash)}; {start}; {wait_script(layout, port)}"
