"""The facts report's formatting, fed with fact results parsed from the real fixtures."""

from __future__ import annotations

import json
from pathlib import Path

from deploys.lib.report import format_report, report_rows

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "facts"


def _fact(name: str, case: str):
    return json.loads((FIXTURES / name / f"{case}.json").read_text())["fact"]


def _colab_gpu_host() -> dict:
    return {
        "system": _fact("platform.SystemSummary", "colab_ubuntu_22_04"),
        "colab": _fact("platform.ColabRuntime", "colab_hosted"),
        "gpus": _fact("gpu.NvidiaGpus", "driver_535_multi_gpu"),
        "driver": _fact("gpu.NvidiaDriver", "mismatch_after_upgrade"),
        "cuda": _fact("cuda.CudaToolkits", "cuda_10_1_and_11_0_version_txt"),
        "cudnn": _fact("cuda.Cudnn", "cudnn_9_pip_wheel_colab"),
        "compilers": _fact("toolchain.HostCompilers", "ubuntu_alternatives"),
        "python": _fact("python.PythonEnv", "colab_gpu_runtime"),
        "interpreter": "/usr/bin/python3",
    }


def test_full_host_shows_every_fact() -> None:
    text = format_report("colab-vm", _colab_gpu_host())
    lines = text.splitlines()
    assert lines[0] == "dlrig facts: colab-vm"
    # A table: every body line has the same width, framed by "|" or "+".
    body = lines[1:]
    assert len({len(line) for line in body}) == 1
    assert all(line[0] in "|+" and line[-1] in "|+" for line in body)
    for expected in (
        "ubuntu 22.04 (jammy), kernel 6.6.122+",
        "hosted Colab VM, release release-colab_20250219-060225_RC01",
        "0: Quadro RTX 4000 (sm 7.5, 8.0 GiB) 00000000:06:00.0",
        "1: Quadro RTX 4000 (sm 7.5, 8.0 GiB) 00000000:07:00.0",
        "580.178, kernel module 580.173.02  MISMATCH",
        "10.1.243 /usr/local/cuda-10.1 (default)",
        "11.0.194 /usr/local/cuda-11.0 ",
        "9.3.0 (/usr/local/lib/python3.11/dist-packages/nvidia/cudnn/include/cudnn_version.h)",
        "gcc 11.4.0 (installed: 9, 11, alternatives -> /usr/bin/gcc-11)",
        "tensorflow 2.17.1, keras 3.5.0, torch 2.5.1+cu121",
        "CUDA 12.3, cuDNN 8",
        "/ 80.7 GiB, /content 80.7 GiB",
    ):
        assert expected in text, expected
    # Braces never appear: pyinfra --json consumers look for the first "{".
    assert "{" not in text


def test_bare_host_says_none() -> None:
    rows = dict(report_rows({}))
    assert rows["GPUs"] == "none"
    assert rows["NVIDIA driver"] == "none"
    assert rows["CUDA toolkits"] == "none"
    assert rows["cuDNN"] == "none"
    assert rows["Python"] == "unknown: the plan did not resolve (see Plan)"
    assert rows["Caffe"] == "unknown"
    assert rows["Speed check"] == "not run yet"
    assert rows["Colab"] == "no"
    assert rows["System"] == "unknown"


def test_mig_and_unknown_compute_capability() -> None:
    gpus = _fact("gpu.NvidiaGpus", "mig_enabled_a100")
    gpus[0]["compute_capability"] = ""
    text = format_report("dgx", {"gpus": gpus})
    assert "0: NVIDIA A100-SXM4-80GB (sm ?, 80.0 GiB, MIG Disabled)" in text
    assert "1: NVIDIA A100-SXM4-80GB (sm 8.0, 80.0 GiB, MIG Enabled)" in text


def test_cpu_only_tensorflow() -> None:
    env = _fact("python.PythonEnv", "colab_gpu_runtime")
    env["tf_build"] = {"cuda_version": None, "cudnn_version": None}
    assert ("TF built for", "CUDA none (CPU build), cuDNN -") in report_rows({"python": env})


def test_missing_interpreter_is_named_not_an_error() -> None:
    rows = dict(report_rows({"interpreter": "/opt/dlrig/venv/bin/python"}))
    assert rows["Python"] == (
        "/opt/dlrig/venv/bin/python does not exist yet (the pip stack makes it)"
    )
    assert "Frameworks" not in rows


def test_plan_error_lines_are_shown() -> None:
    error = "preflight failed:\n  - driver 470 runs CUDA <= 11.4\n  - set cuda_version"
    rows = report_rows({"plan_error": error})
    assert ("Plan", "preflight failed:") in rows
    assert ("", "- driver 470 runs CUDA <= 11.4") in rows
    assert ("", "- set cuda_version") in rows


def test_venv_shows_its_base_interpreter() -> None:
    env = _fact("python.PythonEnv", "colab_gpu_runtime")
    env.update(python="/opt/dlrig/venv/bin/python", base_executable="/usr/bin/python3.11")
    rows = dict(report_rows({"python": env}))
    assert rows["Python"].endswith("/opt/dlrig/venv/bin/python (venv of /usr/bin/python3.11)")
