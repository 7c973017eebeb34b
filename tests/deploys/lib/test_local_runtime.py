"""Colab local runtime logic: data checks, rendered config, and the shell pieces run for real.

The launcher, supervisor, status, start and stop scripts run here against a layout under a
temporary directory, with a stand-in ``jupyter`` (a small Python TCP server) in a fake venv.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploys import local_runtime as deploy
from deploys.lib import local_runtime as lr
from facts.local_runtime import RuntimeStatus

# Stands in for `jupyter notebook`: records its environment, then listens on the port.
FAKE_JUPYTER = """#!{python}
import json, os, socket, sys, time
conf = os.path.join(os.environ["JUPYTER_CONFIG_DIR"], "jupyter_notebook_config.json")
cfg = json.load(open(conf))
with open(os.path.join(os.environ["JUPYTER_RUNTIME_DIR"], "env.json"), "w") as f:
    json.dump({{"env": dict(os.environ), "argv": sys.argv, "cwd": os.getcwd()}}, f)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", cfg["NotebookApp"]["port"]))
s.listen()
while True:
    time.sleep(1)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _layout(tmp: Path) -> lr.Layout:
    return lr.Layout(
        venv=str(tmp / "venv"),
        config_dir=str(tmp / "etc"),
        state_dir=str(tmp / "state"),
        lib_dir=str(tmp / "lib"),
        unit_path=str(tmp / "unit.service"),
    )


def _install(tmp: Path, port: int, token: str = "a" * 48) -> lr.Layout:
    layout = _layout(tmp)
    for d in (layout.venv + "/bin", layout.config_dir, layout.state_dir, layout.lib_dir):
        Path(d).mkdir(parents=True, exist_ok=True)
    os.symlink(sys.executable, layout.venv + "/bin/python")
    jupyter = Path(layout.venv + "/bin/jupyter")
    jupyter.write_text(FAKE_JUPYTER.format(python=sys.executable))
    jupyter.chmod(0o755)
    Path(layout.install_key).write_text("key\n")
    Path(layout.token).write_text(token)
    _configure(layout, port)
    supervisor = Path(layout.supervisor)
    supervisor.write_text(lr.render_supervisor(layout, "root"))
    supervisor.chmod(0o755)
    return layout


def _configure(layout: lr.Layout, port: int, stack_kernel: bool = False) -> None:
    Path(layout.config).write_text(lr.render_config(port, layout.state_dir, True, stack_kernel))
    launcher = Path(layout.launcher)
    launcher.write_text(
        lr.render_launcher(
            layout, port, layout.state_dir, layout.state_dir, "process", stack_kernel
        )
    )
    launcher.chmod(0o755)


def _sh(script: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=check)


def _status(layout: lr.Layout) -> dict:
    return lr.parse_status(_sh(lr.status_script(layout, "process")).stdout.splitlines())


def _values(**changes) -> dict:
    return {**deploy.DEFAULTS, **changes}


def test_defaults_pass_the_checks():
    assert lr.check(_values()) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("local_runtime_port", 0),
        ("local_runtime_port", 70000),
        ("local_runtime_port", True),
        ("local_runtime_user", "bad user;"),
        ("local_runtime_venv", "relative/venv"),
        ("local_runtime_notebook_dir", "notebooks"),
        ("local_runtime_supervisor", "runit"),
        ("local_runtime_packages", []),
        ("local_runtime_packages", ["notebook; rm -rf /"]),
        ("local_runtime_pip_cert", "certs.pem"),
        ("local_runtime_stack_kernel", "yes"),
    ],
)
def test_bad_values_name_their_key(key, value):
    errors = lr.check(_values(**{key: value}))
    assert len(errors) == 1 and key in errors[0]


def test_every_key_is_documented():
    assert set(deploy.DOCS) == set(deploy.DEFAULTS)


def test_config_allows_colab_on_loopback_and_holds_no_token():
    config = json.loads(lr.render_config(9000, "/home/u", False, False))["NotebookApp"]
    assert config["ip"] == "127.0.0.1"
    assert config["port"] == 9000 and config["port_retries"] == 0
    assert config["allow_origin"] == "https://colab.research.google.com"
    assert config["allow_credentials"] is True
    assert config["nbserver_extensions"] == {"jupyter_http_over_ws": True}
    assert config["allow_root"] is False
    assert "token" not in config and "password" not in config


def test_config_names_the_stack_kernel_as_default():
    assert "MappingKernelManager" not in json.loads(lr.render_config(9000, "/", True, False))
    config = json.loads(lr.render_config(9000, "/", True, True))
    assert config["MappingKernelManager"] == {"default_kernel_name": "python3"}


def test_install_key_follows_every_input():
    base = lr.install_key(["notebook==6.5.7"], "python3", False, "")
    assert base == lr.install_key(["notebook==6.5.7"], "python3", False, "")
    assert base != lr.install_key(["notebook==6.5.6"], "python3", False, "")
    assert base != lr.install_key(["notebook==6.5.7"], "python3.12", False, "")
    assert base != lr.install_key(["notebook==6.5.7"], "python3", True, "")
    assert base != lr.install_key(["notebook==6.5.7"], "python3", False, "/etc/ca.pem")


def test_rendered_scripts_are_valid_sh(tmp_path):
    layout = lr.Layout("/opt/dlrig/jupyter with space")
    scripts = [
        lr.render_launcher(layout, 8888, "/root", "/root", "process"),
        lr.render_launcher(layout, 8888, "/root", "/root", "systemd", True),
        lr.render_supervisor(layout, "root"),
        lr.render_supervisor(layout, "alice"),
    ]
    for supervisor in ("process", "systemd"):
        scripts += [
            lr.status_script(layout, supervisor),
            lr.start_script(layout, supervisor, 8888),
            lr.stop_script(layout, supervisor),
        ]
    for script in scripts:
        assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0, script


def test_unit_runs_the_launcher_as_the_user():
    unit = lr.render_unit(lr.Layout("/opt/v"), "alice")
    assert "User=alice\n" in unit
    assert "ExecStart=/usr/local/lib/dlrig/local_runtime/launch\n" in unit
    assert "Restart=on-failure" in unit


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    layout = _layout(tmp_path)
    Path(layout.lib_dir).mkdir()
    Path(layout.launcher).write_text("#!/bin/sh\n")
    Path(layout.launcher).chmod(0o755)
    unit = tmp_path / lr.UNIT_NAME
    unit.write_text(lr.render_unit(layout, "root"))
    run = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


def test_parse_status_and_fact():
    lines = ["running=yes", "instance=abc", "current=abc"]
    assert lr.parse_status(lines) == {"running": True, "instance": "abc", "current": "abc"}
    assert RuntimeStatus().process(["running=no", "instance=", "current="]) == {
        "running": False,
        "instance": None,
        "current": None,
    }


@pytest.mark.parametrize("token", ["", "short", "b" * 48 + "\n"])
def test_launcher_refuses_empty_short_or_newline_tokens(tmp_path, token):
    layout = _install(tmp_path, _free_port(), token=token)
    run = subprocess.run([layout.launcher], capture_output=True, text=True)
    assert run.returncode != 0
    assert "refusing to start" in run.stderr
    assert not Path(layout.instance_hash).exists()


def test_process_supervision_start_restart_stop(tmp_path):
    port = _free_port()
    layout = _install(tmp_path, port)
    status = _status(layout)
    assert not status["running"] and status["instance"] is None and status["current"]

    _sh(lr.start_script(layout, "process", port))
    status = _status(layout)
    assert status["running"] and status["instance"] == status["current"]
    url = Path(layout.connection_url)
    assert url.read_text() == f"http://127.0.0.1:{port}/?token={'a' * 48}\n"
    assert stat.S_IMODE(url.stat().st_mode) == 0o600
    seen = json.loads(Path(layout.state_dir, "jupyter/runtime/env.json").read_text())
    assert seen["env"]["JUPYTER_TOKEN_FILE"] == layout.token
    assert "JUPYTER_TOKEN" not in seen["env"]
    assert seen["argv"][1:] == ["notebook"]
    assert "a" * 48 not in " ".join(seen["argv"])
    assert "JUPYTER_PATH" not in seen["env"]

    # A changed config file makes the recorded hash stale.
    new_port = _free_port()
    _configure(layout, new_port)
    status = _status(layout)
    assert status["running"] and status["instance"] != status["current"]

    # Restart, as the runtime operation does: the new port answers, the old one is closed.
    _sh(lr.stop_script(layout, "process"))
    assert not _status(layout)["running"]
    _sh(lr.start_script(layout, "process", new_port))
    status = _status(layout)
    assert status["running"] and status["instance"] == status["current"]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0

    # The supervisor restarts a runtime that died.
    pid = int(Path(layout.pidfile).read_text())
    runtime = _sh(f"pgrep -P {pid} -f jupyter").stdout.split()
    assert len(runtime) == 1
    os.kill(int(runtime[0]), 9)
    deadline = time.monotonic() + 20
    while _sh(f"pgrep -P {pid} -f jupyter", check=False).stdout.split() in ([], runtime):
        assert time.monotonic() < deadline, "the supervisor did not restart the runtime"
        time.sleep(0.2)

    _sh(lr.stop_script(layout, "process"))
    assert not _status(layout)["running"]
    assert not Path(layout.pidfile).exists()
    assert _gone(pid)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", new_port)) != 0


def _gone(pid: int) -> bool:
    """No such process, or a zombie waiting for init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_launcher_puts_the_stack_kernel_first(tmp_path):
    port = _free_port()
    layout = _install(tmp_path, port)
    _configure(layout, port, stack_kernel=True)
    _sh(lr.start_script(layout, "process", port))
    try:
        seen = json.loads(Path(layout.state_dir, "jupyter/runtime/env.json").read_text())
        assert seen["env"]["JUPYTER_PATH"] == layout.jupyter_path
        assert "JUPYTER_TOKEN" not in seen["env"]
        assert layout.kernel_spec == f"{layout.jupyter_path}/kernels/python3/kernel.json"
    finally:
        _sh(lr.stop_script(layout, "process"))
