"""e2e: the Colab local runtime (Jupyter + jupyter_http_over_ws) in a real Debian 12 root.

The chroot shares this machine's network namespace, so the runtime's 127.0.0.1 port is reached
from the test directly. pip downloads are cached under ``~/.cache/dlrig/pip`` (bind-mounted as
the root's pip cache), so reruns do not download again.

The stack the kernel must run is the plan's interpreter, ``/opt/dlrig/venv/bin/python``: here a
bare venv made by the test (no frameworks; cheap), into which the deploy installs ipykernel.
Jupyter's own venv is made from the plan's base interpreter, ``/usr/bin/python3``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import targets

pytestmark = pytest.mark.e2e

DEPLOY = "deploys.local_runtime.local_runtime"
COLAB = "https://colab.research.google.com"
VENV = "/opt/dlrig/jupyter"
TOKEN = "/etc/dlrig/local_runtime/token"
PROBE = Path(__file__).with_name("colab_probe.py")
STACK_VENV = "/opt/dlrig/venv"
STACK = f"{STACK_VENV}/bin/python"
BASE = "/usr/bin/python3"  # the plan's python.base on Debian 12
KERNEL_SPEC = "/usr/local/lib/dlrig/local_runtime/jupyter/kernels/python3/kernel.json"


WHEELHOUSE = "/root/.cache/pip/wheels"


def _pip_cache(root: targets.Root, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Bind the host's pip cache into the root; once it holds the runtime's wheels, pip in the
    root installs from them offline (``/etc/pip.conf``: no-index + find-links; it applies over
    SSH and sudo too). pip's HTTP cache does not help: responses through this machine's
    TLS-intercepting proxy carry no caching headers, and pip prefers index files over
    find-links files of the same version. A cold cache runs the real path: PyPI, with the CA
    bundle from the venv's pip.conf. This machine's PIP_* variables would leak into the chroot
    (and mask the venv's pip.conf), so the pyinfra runs go without them."""
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    cache = targets.CACHE / "pip"
    (cache / "wheels").mkdir(parents=True, exist_ok=True)
    root.bind(str(cache), "/root/.cache/pip", read_only=False)
    if _stamp(cache).exists():
        (root.path / "etc/pip.conf").write_text(
            f"[global]\nno-index = true\nfind-links = {WHEELHOUSE}\n"
        )
    return cache


def _stamp(cache: Path) -> Path:
    return cache / f"wheels-{_packages_key()}.done"


def _fill_wheelhouse(root: targets.Root, cache: Path, venvs: tuple[str, ...] = (VENV,)) -> None:
    """After a first install, keep every wheel the venvs hold (once per package list)."""
    stamp = _stamp(cache)
    if stamp.exists():
        return
    for venv in venvs:
        root.run(
            f"{venv}/bin/pip freeze --all > /tmp/runtime-req.txt && "
            f"{venv}/bin/pip download -q -d {WHEELHOUSE} -r /tmp/runtime-req.txt"
        )
    stamp.touch()


def _packages_key() -> str:
    from deploys.lib.local_runtime_kernel import KERNEL_REQUIREMENT
    from deploys.local_runtime import DEFAULTS

    material = json.dumps([DEFAULTS["local_runtime_packages"], KERNEL_REQUIREMENT]).encode()
    return hashlib.sha256(material).hexdigest()[:12]


def _install_key(python: str, cert: str) -> str:
    """The key the deploy records for Jupyter's venv made from ``python`` (default packages)."""
    from deploys.lib.local_runtime import install_key
    from deploys.local_runtime import DEFAULTS

    return install_key(DEFAULTS["local_runtime_packages"], python, False, cert)


def _get(port: int, path: str, token: str | None = None, origin: str | None = None):
    """GET over loopback; returns (status, headers)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        request.add_header("Authorization", f"token {token}")
    if origin:
        request.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers


def _api(
    port: int, method: str, path: str, token: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """A token-authenticated Jupyter REST call over loopback; returns (status, parsed JSON)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, None


def _kernel_processes(root: targets.Root) -> dict[int, list[str]]:
    """Kernel processes (``-m ipykernel_launcher``) running inside the root: pid -> argv."""
    found = {}
    for pid in targets._processes_in(root.path):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        if "ipykernel_launcher" in argv:
            found[pid] = argv
    return found


def _kernel_runs_the_stack(root: targets.Root, port: int, token: str) -> None:
    """Start a kernel as Colab does (by the name its notebooks carry): it runs the stack's
    interpreter, stays up (ipykernel imports there), and stops when deleted."""
    status, kernel = _api(port, "POST", "/api/kernels", token, {"name": "python3"})
    assert status == 201, status
    deadline = time.monotonic() + 60
    while not (procs := _kernel_processes(root)):
        assert time.monotonic() < deadline, "no kernel process started"
        time.sleep(0.2)
    [(pid, argv)] = procs.items()
    assert argv[:3] == [STACK, "-m", "ipykernel_launcher"], argv
    time.sleep(3)  # a kernel that cannot import ipykernel exits at once (and is restarted)
    assert _kernel_processes(root) == {pid: argv}
    assert _api(port, "GET", f"/api/kernels/{kernel['id']}", token)[0] == 200
    assert _api(port, "DELETE", f"/api/kernels/{kernel['id']}", token)[0] == 204
    deadline = time.monotonic() + 30
    while _kernel_processes(root):
        assert time.monotonic() < deadline, "the kernel did not stop"
        time.sleep(0.2)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _probe(root: targets.Root, port: int, token: str | None, origin: str = COLAB) -> dict:
    """Speak Colab's HTTP-over-websocket protocol to the runtime, from inside the root."""
    shutil.copy(PROBE, root.path / "tmp/colab_probe.py")
    env = f"PROBE_TOKEN={token} " if token else ""
    out = root.run(f"{env}{VENV}/bin/python /tmp/colab_probe.py {port} /api/status '{origin}'")
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_local_runtime_serves_colab(debian_root, run_pyinfra, monkeypatch):
    root = debian_root.root
    cache = _pip_cache(root, monkeypatch)
    port = targets.free_port()

    # Bad data stops the run before anything changes, naming the key.
    for bad in ({"local_runtime_port": 70000}, {"local_runtime_user": "nobody-here"}):
        run = run_pyinfra(debian_root, DEPLOY, bad)
        assert run.returncode != 0 and next(iter(bad)) in run.output
    assert not (root.path / "etc/dlrig").exists()
    assert not (root.path / VENV.lstrip("/")).exists()

    # The kernel runs the stack's interpreter: before the stack exists, the run stops at that
    # step and names it (the steps before it, APT and Jupyter's venv, are done).
    no_stack = run_pyinfra(debian_root, DEPLOY, {"local_runtime_port": port})
    assert no_stack.returncode != 0
    assert f"the stack interpreter {STACK} does not exist" in no_stack.output, no_stack.output[
        -3000:
    ]
    assert "local_runtime_stack_kernel=False" in no_stack.output
    assert not _listening(port)
    # The stack's venv, as the pip stack makes it (python3-venv came with the run above).
    root.run(f"python3 -m venv {STACK_VENV}")

    first = run_pyinfra(debian_root, DEPLOY, {"local_runtime_port": port}, args=["-vvv"])
    assert first.returncode == 0, first.output[-6000:]
    _fill_wheelhouse(root, cache, (VENV, STACK_VENV))
    token = (root.path / TOKEN.lstrip("/")).read_text()
    assert len(token) >= 32 and "\n" not in token
    assert (root.path / TOKEN.lstrip("/")).stat().st_mode & 0o777 == 0o600
    assert "new-token" in first.output  # -vvv shows the commands, the one making the token too
    assert token not in first.output, "the token leaked into pyinfra -vvv output"
    pip_conf = root.path / VENV.lstrip("/") / "pip.conf"
    assert pip_conf.read_text() == "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
    # Jupyter's venv was made from the plan's base interpreter (Debian 12: /usr/bin/python3).
    assert (root.path / VENV.lstrip("/") / ".dlrig-install-key").read_text() == (
        _install_key(BASE, "/etc/ssl/certs/ca-certificates.crt") + "\n"
    )
    assert "connection-url" in first.output  # where to find the URL, shown to the user
    url_file = root.path / "var/lib/dlrig/local_runtime/connection-url"
    assert url_file.read_text() == f"http://127.0.0.1:{port}/?token={token}\n"
    assert url_file.stat().st_mode & 0o777 == 0o600

    # Token auth: /api/status needs it (notebook 6's bare /api is its public version endpoint).
    assert _get(port, "/api/status", token)[0] == 200
    assert _get(port, "/api/status")[0] == 403
    assert _get(port, "/api/status", "wrong" * 8)[0] == 403
    # CORS for Colab's origin, with credentials.
    status, headers = _get(port, "/api/status", token, origin=COLAB)
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == COLAB
    assert headers["Access-Control-Allow-Credentials"] == "true"
    # Another origin is not echoed back (the server only ever allows Colab's).
    assert _get(port, "/api", origin="https://evil.test")[1]["Access-Control-Allow-Origin"] == COLAB

    # The kernel: a kernelspec named python3 (what Colab asks for) running the stack's
    # interpreter, which can launch ipykernel; the server offers it, as the default, instead
    # of its own venv's Python, and a kernel started by that name runs it.
    spec = json.loads((root.path / KERNEL_SPEC.lstrip("/")).read_text())
    assert spec["argv"] == [STACK, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    root.run(f"{STACK} -c 'import ipykernel, ipykernel_launcher'")
    status, specs = _api(port, "GET", "/api/kernelspecs", token)
    assert status == 200
    assert specs["default"] == "python3"
    assert specs["kernelspecs"]["python3"]["spec"]["argv"][0] == STACK
    _kernel_runs_the_stack(root, port, token)

    # The extension itself: Colab's HTTP-over-websocket path, as Colab uses it.
    assert _probe(root, port, token)["status"] == 200
    assert _probe(root, port, None)["status"] == 403
    # Without a token, a page from another origin cannot even open the websocket (notebook 6
    # skips the origin check only for token-authenticated requests: the token is the proof).
    assert _probe(root, port, None, origin="https://evil.test") == {"handshake": 403}

    second = run_pyinfra(debian_root, DEPLOY, {"local_runtime_port": port})
    assert second.returncode == 0, second.output[-4000:]
    assert second.changed == [], second.changed
    assert "Tunnel: ssh -N -L" in second.output  # the hint shows at default verbosity too
    assert token not in second.output

    # A new port restarts it: the new port answers, the old one is closed, the token is kept.
    new_port = targets.free_port()
    moved = run_pyinfra(debian_root, DEPLOY, {"local_runtime_port": new_port})
    assert moved.returncode == 0, moved.output[-6000:]
    assert any(name.endswith("(restart on config change)") for name in moved.changed)
    assert _get(new_port, "/api/status", token)[0] == 200
    assert not _listening(port)

    # Stoppable: present=False stops the supervisor and Jupyter and removes what was installed.
    gone = run_pyinfra(
        debian_root, DEPLOY, {"local_runtime_port": new_port, "local_runtime_present": False}
    )
    assert gone.returncode == 0, gone.output[-6000:]
    assert not _listening(new_port)
    assert not targets._processes_in(root.path)
    assert not (root.path / TOKEN.lstrip("/")).exists()
    assert not (root.path / VENV.lstrip("/")).exists()
    assert not (root.path / KERNEL_SPEC.lstrip("/")).exists()


def _jupyter_uids(root: targets.Root) -> set[int]:
    """Real uids of the Jupyter server processes running inside the root."""
    uids = set()
    for pid in targets._processes_in(root.path):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        # `jupyter notebook` execs `jupyter-notebook`
        if any(a.endswith(b"/jupyter-notebook") for a in argv):
            uids.add(int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1]))
    return uids


def test_local_runtime_over_ssh_as_a_user(ssh_host, converge, monkeypatch):
    """A server-like host: pyinfra logs in over SSH with sudo; Jupyter runs as user dlrig,
    with its venv's own kernel (no stack on this host)."""
    root = ssh_host.root
    cache = _pip_cache(root, monkeypatch)
    port = targets.free_port()
    data = {
        "local_runtime_port": port,
        "local_runtime_user": targets.SSH_USER,
        "local_runtime_stack_kernel": False,
    }

    first, _ = converge(ssh_host, DEPLOY, data)
    _fill_wheelhouse(root, cache)
    token_file = root.path / TOKEN.lstrip("/")
    token = token_file.read_text()
    host = ssh_host.testinfra()
    info = host.file(TOKEN)
    assert info.user == targets.SSH_USER and info.mode == 0o600
    assert token not in first.output
    assert _get(port, "/api/status", token)[0] == 200
    assert _get(port, "/api/status")[0] == 403
    uid = int(host.check_output(f"id -u {targets.SSH_USER}"))
    assert _jupyter_uids(root) == {uid}
    assert host.file("/home/dlrig").exists  # notebook_dir defaults to the user's home
    # The plan resolved over SSH with sudo: Jupyter's venv is made from its base interpreter.
    key = root.path / VENV.lstrip("/") / ".dlrig-install-key"
    assert key.read_text() == _install_key(BASE, "/etc/ssl/certs/ca-certificates.crt") + "\n"
    assert not host.file(KERNEL_SPEC).exists
