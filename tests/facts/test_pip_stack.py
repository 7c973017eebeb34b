"""Python-stack facts: commands quote their inputs; output from real hosts is parsed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra.api import FactProcessError

from facts.pip_stack import FrameworkReport, IndexFiles, PipDistributions, StackHost

DATA = Path(__file__).parent / "pip_stack"


def _sh(command) -> str:
    return command.get_raw_value() if hasattr(command, "get_raw_value") else str(command)


def test_stack_host_parses_a_gpu_and_a_cpu_host():
    fact = StackHost()
    assert fact.process(["python=3.12", "cuda=12.4", "colab=1"]) == {
        "python": "3.12",
        "cuda": "12.4",
        "colab": True,
    }
    assert fact.process(["python=3.11"]) == {"python": "3.11", "cuda": None, "colab": False}
    assert fact.process(["python=", "cuda="]) == {"python": None, "cuda": None, "colab": False}
    with pytest.raises(FactProcessError):
        fact.process(["python=3.11", "cuda=twelve"])


def test_stack_host_command_runs_here_and_reads_nvidia_smi(tmp_path):
    # The real script, on this machine, with a fake nvidia-smi printing a real header.
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\ncat " + str(DATA / "nvidia-smi-t4.txt") + "\n")
    smi.chmod(0o755)
    out = subprocess.run(
        ["sh", "-c", _sh(StackHost().command(python=sys.executable))],
        capture_output=True,
        text=True,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        check=True,
    ).stdout.splitlines()
    facts = StackHost().process(out)
    assert facts["cuda"] == "12.4"
    assert facts["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"


def test_stack_host_quotes_the_interpreter():
    assert "'python3; rm -rf /'" in _sh(StackHost().command(python="python3; rm -rf /"))


def test_pip_distributions_parses_pip_list_in_colab_shape():
    lines = (DATA / "pip-list-colab.json").read_text().splitlines()
    facts = PipDistributions().process(lines)
    assert facts["torch"] == {"2.6.0+cu124"}
    assert facts["jupyter-http-over-ws"] == {"0.0.8"}
    with pytest.raises(FactProcessError):
        PipDistributions().process(["not json"])


def test_pip_distributions_command_and_missing_interpreter():
    fact = PipDistributions()
    assert fact.requires_command(python="/opt/v env/bin/python") == "/opt/v env/bin/python"
    assert _sh(fact.command(python="/opt/v env/bin/python")).startswith(
        "'/opt/v env/bin/python' -m pip"
    )


def test_index_files_lists_find_links_directories_here(tmp_path):
    (tmp_path / "keras-3.15.1-py3-none-any.whl").write_text("")
    (tmp_path / "other.txt").write_text("")
    cmd = IndexFiles().command(python=sys.executable, sources=[str(tmp_path)], names=["keras"])
    out = subprocess.run(["sh", "-c", _sh(cmd)], capture_output=True, text=True, check=True)
    facts = IndexFiles().process(out.stdout.splitlines())
    assert "keras-3.15.1-py3-none-any.whl" in facts["keras"]["files"]
    assert facts["keras"]["errors"] == []


def test_index_files_reports_an_unreachable_index():
    cmd = IndexFiles().command(
        python=sys.executable, sources=["http://127.0.0.1:9/simple"], names=["keras"]
    )
    out = subprocess.run(["sh", "-c", _sh(cmd)], capture_output=True, text=True, check=True)
    facts = IndexFiles().process(out.stdout.splitlines())
    assert facts["keras"]["files"] == []
    assert "127.0.0.1:9" in facts["keras"]["errors"][0]


def test_framework_report_runs_here_and_reports_import_errors():
    cmd = FrameworkReport().command(python=sys.executable, modules=["json", "no_such_module_x"])
    out = subprocess.run(["sh", "-c", _sh(cmd)], capture_output=True, text=True, check=True)
    report = FrameworkReport().process(out.stdout.splitlines())
    assert report["no_such_module_x"]["error"].startswith("ModuleNotFoundError")
    assert "python" in report
    with pytest.raises(FactProcessError):
        FrameworkReport().process([])
