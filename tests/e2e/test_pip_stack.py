"""e2e: the Python stack in a venv on a Debian 12 root (CPU: TensorFlow + Keras, local torch).

CI can afford a CPU stack only: TensorFlow (tensorflow-cpu) and Keras come from PyPI, PyTorch
only from a local CPU wheel (``DLRIG_TORCH_WHEELS``, default ``/opt/wheels``; PyPI's default
torch pulls GBs of CUDA wheels). The deploy's wheelhouse (``pip_stack_cache_dir``) is
``~/.cache/dlrig/pip/pip_stack`` on this machine, bind-mounted into the root, so reruns download
nothing again (pip's HTTP cache alone stores nothing behind proxies that strip caching headers).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from facts.pip_stack import FrameworkReport, PipDistributions
from tests.e2e.targets import CACHE, sh

pytestmark = pytest.mark.e2e

WHEELS = Path(os.environ.get("DLRIG_TORCH_WHEELS", "/opt/wheels"))
PIP_CACHE = CACHE / "pip" / "pip_stack"
ROOT_CACHE = "/var/cache/dlrig-pip"
ROOT_WHEELS = "/srv/wheels"
VENV = "/opt/dlrig/venv"
# Debian 12's interpreter is 3.11: a cp311 CPU torch wheel fits it.
HAS_TORCH = any(WHEELS.glob("torch-*+cpu-cp311-*.whl")) if WHEELS.is_dir() else False

# Settings of this machine that would hide what the deploy itself must get right (pip's CA
# bundle, find-links): the chroot connector passes the controller's environment through.
_LEAKY_ENV = (
    "PIP_CERT",
    "PIP_FIND_LINKS",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_CONFIG_FILE",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
)


@pytest.fixture
def stack_root(debian_root, monkeypatch):
    """The Debian root with the pip cache (read-write) and the local wheels (read-only) bound."""
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    debian_root.root.bind(str(PIP_CACHE), ROOT_CACHE, read_only=False)
    if WHEELS.is_dir():
        debian_root.root.bind(str(WHEELS), ROOT_WHEELS)
    # The venv holds ~2 GB in many small files: on a tmpfs, teardown is an unmount, not minutes
    # of rmtree on a busy disk.
    venv_parent = debian_root.root.path / VENV.lstrip("/").rsplit("/", 1)[0]
    venv_parent.mkdir(parents=True)
    sh(["mount", "-t", "tmpfs", "-o", "size=6g,mode=755", "tmpfs", str(venv_parent)])
    return debian_root


def _data(**extra):
    data = {
        "pip_stack_packages": {
            "tensorflow": "",
            "keras": "",
            "torch": "",
            "torchvision": "",
            "jupyter_http_over_ws": "",
            "numpy": "",
        },
        "pip_stack_cache_dir": ROOT_CACHE,
        "pip_stack_torch_wheels": "local",
        "pip_stack_find_links": [ROOT_WHEELS] if WHEELS.is_dir() else [],
    }
    data.update(extra)
    return data


def test_cpu_stack_in_a_venv_converges_and_imports(stack_root, converge):
    first, second = converge(stack_root, "deploys.pip_stack.pip_stack", _data())
    out = first.output
    # The CPU variant of TensorFlow, and no torchvision (no local CPU wheel of it).
    assert "tensorflow-cpu" in out
    assert "torchvision: no usable local CPU wheel" in out
    assert "notebook<7" in out
    # The second run verifies again and reports the versions and devices.
    assert "pip_stack: Python 3.11" in second.output
    assert "tensorflow 2." in second.output and "[CPU:0]" in second.output
    # Wheels were kept in the wheelhouse: a rerun on a fresh host downloads nothing again.
    assert any(PIP_CACHE.glob("wheels/tensorflow_cpu-*.whl"))

    host = stack_root.testinfra()
    assert "python3-venv" in stack_root.root.packages()
    conf = host.file(f"{VENV}/pip.conf").content_string
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in conf
    py = f"{VENV}/bin/python"
    versions = host.check_output(
        f"{py} -c 'import tensorflow as tf, keras, jupyter_http_over_ws; "
        "print(tf.__version__, keras.__version__, "
        "tf.config.list_physical_devices()[0].device_type)'"
    ).split()
    assert versions[0].startswith("2.") and versions[1].startswith("3.")
    assert versions[2] == "CPU"
    # The facts the deploy reads, on the real venv.
    report = FrameworkReport().process(
        host.check_output(
            FrameworkReport().command(python=py, modules=["tensorflow", "torch"]).get_raw_value()
        ).splitlines()
    )
    assert report["tensorflow"]["devices"] == ["CPU:0"]
    installed = PipDistributions().process(
        host.check_output(PipDistributions().command(python=py).get_raw_value()).splitlines()
    )
    assert {"tensorflow-cpu", "keras", "jupyter-http-over-ws", "notebook"} <= set(installed)
    # Installed into the venv, not into Debian's interpreter.
    assert host.run("python3 -c 'import tensorflow'").rc != 0
    if HAS_TORCH:
        assert report["torch"]["devices"] == ["cpu"] and report["torch"]["gpu"] is False
        assert installed["torch"] == {report["torch"]["version"]}
        torch = host.check_output(f"{py} -c 'import torch; print(torch.__version__)'")
        assert torch.endswith("+cpu"), torch
        assert "torch==" in out
    else:
        assert host.run(f"{py} -c 'import torch'").rc != 0
        assert "torch: no usable local CPU wheel" in out


@pytest.mark.parametrize("target_fixture", ["stack_root", "ssh_host"])
def test_nonexistent_version_fails_before_any_change(
    request, monkeypatch, run_pyinfra, target_fixture
):
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    target = request.getfixturevalue(target_fixture)
    before = target.root.packages()
    data = _data(pip_stack_packages={"keras": "", "tensorflow": "==0.0.1"})
    run = run_pyinfra(target, "deploys.pip_stack.pip_stack", data)
    assert run.returncode != 0
    assert "data key 'pip_stack_packages': tensorflow-cpu==0.0.1: no such release" in run.output
    assert "nothing changed" in run.output
    # Nothing changed: no python3-venv, no venv.
    assert target.root.packages() == before
    assert not (target.root.path / VENV.lstrip("/")).exists()


def test_unknown_package_and_credentials_in_urls_are_refused(stack_root, run_pyinfra):
    run = run_pyinfra(
        stack_root,
        "deploys.pip_stack.pip_stack",
        _data(pip_stack_packages={"tensorflow-does-not-exist-dlrig": ""}),
    )
    assert run.returncode != 0
    assert "tensorflow-does-not-exist-dlrig: no such package" in run.output

    secret = "s3cr3t-token"
    run = run_pyinfra(
        stack_root,
        "deploys.pip_stack.pip_stack",
        _data(pip_stack_extra_index_urls=[f"https://user:{secret}@pkgs.example.invalid/simple"]),
        args=["-vvv"],
    )
    assert run.returncode != 0
    assert "carries credentials" in run.output
    assert secret not in run.output
    assert not (stack_root.root.path / VENV.lstrip("/")).exists()
