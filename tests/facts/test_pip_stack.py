"""Python-stack facts: commands quote their inputs; output from real hosts is parsed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyinfra.api import FactProcessError

from facts.pip_stack import FrameworkReport, IndexFiles, PipDistributions

DATA = Path(__file__).parent / "pip_stack"


def _sh(command) -> str:
    return command.get_raw_value() if hasattr(command, "get_raw_value") else str(command)


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
