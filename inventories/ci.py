"""Fake hosts for the dry-run plan tests: three profiles, no real machine behind them.

pyinfra's ``@fake`` connector answers each fact command with canned output (``fake_responses``:
command substring → stdout lines). The outputs below are what these facts print on such hosts:
the Colab host's are the captured real outputs of tests/facts/; the H100 server's and parts of
the others are written in the same format for the profile (marked ``profile``).

    pyinfra inventories/ci.py deploys/gpu_server.py --dry --limit h100-server

``tests/plans/`` holds the plans these give; ``python -m tests.plans.update`` rewrites them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from facts.cuda import CudaToolkits, Cudnn
from facts.gpu import NvidiaDriver, NvidiaGpus
from facts.pip_stack import PipDistributions
from facts.platform import ColabRuntime, SystemSummary
from facts.python import PythonEnv
from facts.toolchain import HostCompilers

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "facts"


def _fixture(name: str) -> list[str]:
    return json.loads((FIXTURES / f"{name}.json").read_text())["output"]


def _command(fact: type, **kwargs: Any) -> str:
    command = fact().command(**kwargs)
    return command if isinstance(command, str) else command.get_raw_value()


def _os_release(pretty: str, id_: str, version: str, codename: str) -> list[str]:
    return [
        f'PRETTY_NAME="{pretty}"',
        f"ID={id_}",
        f'VERSION_ID="{version}"',
        f"VERSION_CODENAME={codename}",
    ]


def _system(cpu: str, count: int, mem_kib: int, kernel: str, os_release: list[str]) -> list[str]:
    return [
        f"@cpu_model {cpu}",
        f"@cpu_count {count}",
        f"@mem_total_kib {mem_kib}",
        f"@kernel {kernel}",
        "@os_release",
        *os_release,
        "@df 400000000 /",
    ]


def _python(version: str, packages: dict[str, str | None], tf_build: dict | None) -> list[str]:
    env = {
        "python": "/usr/bin/python3",
        "version": version,
        "site_packages": [f"/usr/local/lib/python{version.rsplit('.', 1)[0]}/dist-packages"],
        "packages": packages,
        "tf_build": tf_build,
    }
    return ["@dlrig-python-env " + json.dumps(env)]


def _caffe_inputs(os_: str, cxx: str, nvcc: str, cudnn: str, python: str, numpy: str) -> list[str]:
    """CaffeBuildInputs' output (facts/caffe.py) for a profile."""
    env = {
        "version": python,
        "include": f"/usr/include/python{python}",
        "libdir": "/usr/lib/x86_64-linux-gnu",
        "purelib": f"/usr/local/lib/python{python}/dist-packages",
        "numpy_include": f"/usr/local/lib/python{python}/dist-packages/numpy/_core/include",
        "numpy": numpy,
    }
    return [
        f"os={os_}",
        f"cxx_version={cxx}",
        "multiarch=x86_64-linux-gnu",
        f"nvcc={nvcc}",
        f"cudnn={cudnn}",
        "boost=",  # a fresh host: dlrig's Boost is not built yet
        "boost_key=",
        "python=" + json.dumps(env),
    ]


def _responses(
    outputs: dict[str, list[str]], files: dict[str, list[str]], caffe: list[str]
) -> dict[str, Any]:
    responses: dict[str, Any] = {"caffe-build-inputs": caffe}
    for path, lines in files.items():
        responses[f"cat {path}"] = lines
    responses.update(outputs)
    return responses


def _facts(**outputs: list[str]) -> dict[str, list[str]]:
    commands = {
        "gpus": _command(NvidiaGpus),
        "driver": _command(NvidiaDriver),
        "toolkits": _command(CudaToolkits),
        "cudnn": _command(Cudnn),
        "compilers": _command(HostCompilers),
        "python": _command(PythonEnv, python="python3"),
        "colab": _command(ColabRuntime),
        "system": _command(SystemSummary),
        "pip": _command(PipDistributions, python="python3"),
        "apt_get": "command -v apt-get",
    }
    return {commands[name]: lines for name, lines in outputs.items()}


UBUNTU_2204_SOURCES = (
    FIXTURES.parent / "deploys/lib/apt_text/ubuntu-22.04-sources.list"
).read_text()
UBUNTU_2404_SOURCES = (
    FIXTURES.parent / "deploys/lib/apt_text/ubuntu-24.04-ubuntu.sources"
).read_text()

# Hosted Colab with a T4 (Ubuntu 22.04, driver and CUDA as Colab ships them, Python 3.12 with
# TensorFlow and PyTorch preinstalled).
COLAB_GPU = _responses(
    _facts(
        gpus=_fixture("gpu.NvidiaGpus/colab_t4"),
        driver=_fixture("gpu.NvidiaDriver/driver_535"),
        toolkits=_fixture("cuda.CudaToolkits/colab_ubuntu_22_04_cuda_12_2"),
        cudnn=_fixture("cuda.Cudnn/cudnn_9_pip_wheel_colab"),
        compilers=_fixture("toolchain.HostCompilers/ubuntu_alternatives"),
        # profile: Colab's 2025 image moved to Python 3.12.
        python=_python(
            "3.12.11",
            {
                "tensorflow": "2.19.0",
                "keras": "3.10.0",
                "torch": "2.8.0+cu126",
                "torchvision": "0.23.0+cu126",
                "jax": "0.5.3",
                "numpy": "2.0.2",
            },
            {"cuda_version": "12.5.1", "cudnn_version": "9"},
        ),
        colab=_fixture("platform.ColabRuntime/colab_hosted"),
        system=_fixture("platform.SystemSummary/colab_ubuntu_22_04"),
        # profile: `pip list --format=json` of the same preinstalled frameworks (pip_stack).
        pip=[
            json.dumps(
                [
                    {"name": "tensorflow", "version": "2.19.0"},
                    {"name": "keras", "version": "3.10.0"},
                    {"name": "torch", "version": "2.8.0+cu126"},
                    {"name": "torchvision", "version": "0.23.0+cu126"},
                    {"name": "numpy", "version": "2.0.2"},
                    {"name": "notebook", "version": "6.5.7"},
                ]
            )
        ],
        apt_get=["/usr/bin/apt-get"],
    ),
    {"/etc/apt/sources.list": UBUNTU_2204_SOURCES.splitlines()},
    _caffe_inputs("ubuntu-22.04", "11.4.0", "12.2", "9.3.0", "3.12", "2.0.2"),
)

# profile: an Ubuntu 24.04 server with one H100, driver 580, CUDA 13.0 toolkit, gcc 13.
H100_SERVER = _responses(
    _facts(
        gpus=[
            "0, NVIDIA H100 80GB HBM3, GPU-5e3a1b7c-0d2f-4c1e-9b8a-7f6e5d4c3b2a, "
            "00000000:18:00.0, 81559, Disabled, 9.0"
        ],
        driver=[
            "@smi",
            "| NVIDIA-SMI 580.65.06   Driver Version: 580.65.06   CUDA Version: 13.0     |",
            "@proc",
            "@sys",
            "580.65.06",
            "@lib",
        ],
        toolkits=_fixture("cuda.CudaToolkits/this_machine_cuda_13_0"),
        cudnn=[],
        compilers=[
            "@default gcc",
            "13.3.0",
            "@default g++",
            "13.3.0",
            "@installed /usr/bin/gcc-13",
            "@installed /usr/bin/g++-13",
        ],
        python=_python("3.12.3", {}, None),
        colab=[],
        system=_system(
            "Intel(R) Xeon(R) Platinum 8480+",
            224,
            2113178500,
            "6.8.0-60-generic",
            _os_release("Ubuntu 24.04.2 LTS", "ubuntu", "24.04", "noble"),
        ),
        apt_get=["/usr/bin/apt-get"],
    ),
    {"/etc/apt/sources.list.d/ubuntu.sources": UBUNTU_2404_SOURCES.splitlines()},
    _caffe_inputs("ubuntu-24.04", "13.3.0", "13.0", "", "3.12", "2.1.3"),
)

# A Debian 12 host without a GPU (this CI machine's own captured facts, CUDA left out).
DEBIAN_CPU = _responses(
    _facts(
        gpus=[],
        driver=_fixture("gpu.NvidiaDriver/no_driver"),
        toolkits=[],
        cudnn=[],
        compilers=_fixture("toolchain.HostCompilers/debian_12_this_machine"),
        python=_python("3.11.2", {}, None),
        colab=_fixture("platform.ColabRuntime/not_colab_this_machine"),
        system=_fixture("platform.SystemSummary/debian_12_this_machine"),
        apt_get=["/usr/bin/apt-get"],
    ),
    {"/etc/apt/sources.list": ["deb http://deb.debian.org/debian bookworm main"]},
    json.loads((FIXTURES / "caffe/debian-12-cpu.json").read_text())["output"],
)

_COMMON = {"fake_delay": 0, "fake_delay_jitter": 0, "speed_check_results_dir": "/tmp/dlrig-ci"}

hosts = [
    ("@fake/colab-gpu", {**_COMMON, "fake_responses": COLAB_GPU}),
    ("@fake/h100-server", {**_COMMON, "fake_responses": H100_SERVER}),
    ("@fake/debian-cpu", {**_COMMON, "fake_responses": DEBIAN_CPU}),
]
