"""``ReportState``: its shell script run against real files, and the report's rows from it.

Parsing of captured output is in the fixtures (``report.ReportState/``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from deploys.lib.report import format_report, report_rows
from facts.report import ReportState, parse_report_state

KEY = {"build_key": "0123456789abcdef" * 4, "inputs": {"commit": "82024f2c1d3e55", "cuda": "12.4"}}


def _state(tmp: Path, site_packages: list[str]) -> dict:
    fact = ReportState()
    command = fact.command(
        caffe_prefix=str(tmp / "caffe") + "/",
        key_name=".dlrig-build-key.json",
        pth_name="dlrig-caffe.pth",
        verdict=str(tmp / "verdict dir" / "verdict.json"),
        site_packages=site_packages,
    )
    run = subprocess.run(
        ["sh", "-c", command.get_raw_value()], capture_output=True, text=True, check=True
    )
    return fact.process(run.stdout.splitlines())


def test_state_of_a_bare_host(tmp_path: Path) -> None:
    state = _state(tmp_path, [str(tmp_path / "nowhere")])
    assert state == {
        "caffe": {"prefix": str(tmp_path / "caffe"), "package": False, "pth": None, "key": None},
        "speed_check": None,
    }
    rows = dict(report_rows({"state": state}))
    assert rows["Caffe"] == "none"
    assert rows["Speed check"] == "not run yet"


def test_state_of_a_converged_host(tmp_path: Path) -> None:
    prefix = tmp_path / "caffe"
    (prefix / "python" / "caffe").mkdir(parents=True)
    (prefix / "python" / "caffe" / "__init__.py").write_text("")
    (prefix / ".dlrig-build-key.json").write_text(json.dumps(KEY, indent=2) + "\n")
    other, site = tmp_path / "other-site", tmp_path / "site"
    other.mkdir()
    site.mkdir()
    (other / "dlrig-caffe.pth").write_text("/somewhere/else/python\n")
    (site / "dlrig-caffe.pth").write_text(f"{prefix}/python\n")
    verdict = tmp_path / "verdict dir" / "verdict.json"
    verdict.parent.mkdir()
    figures = {"tensorflow": {"speedup": 12.34}, "torch": {"speedup": 30.0}, "caffe": {}}
    verdict.write_text(json.dumps({"ok": True, "failures": [], "figures": figures}, indent=2))
    os.utime(verdict, (1_700_000_000, 1_700_000_000))

    state = _state(tmp_path, [str(other), str(site)])
    assert state["caffe"] == {
        "prefix": str(prefix),
        "package": True,
        "pth": f"{site}/dlrig-caffe.pth",
        "key": KEY,
    }
    assert state["speed_check"] == {
        "path": str(verdict),
        "mtime": 1_700_000_000,
        "verdict": {"ok": True, "failures": [], "figures": figures},
    }
    facts = {"state": state, "interpreter": "/opt/dlrig/venv/bin/python"}
    rows = report_rows(facts)
    caffe = rows.index(("Caffe", f"{prefix}, build 0123456789ab (commit 82024f2c1d, CUDA 12.4)"))
    assert rows[caffe + 1] == ("", "import caffe works in /opt/dlrig/venv/bin/python")
    assert ("Speed check", "OK, 2023-11-14 22:13 UTC: tensorflow 12.3x, torch 30.0x") in rows
    assert "{" not in format_report("gpu1", facts)


def test_failed_verdict_and_unimportable_caffe(tmp_path: Path) -> None:
    prefix = tmp_path / "caffe"
    (prefix / "python" / "caffe").mkdir(parents=True)
    (prefix / "python" / "caffe" / "__init__.py").write_text("")
    verdict = tmp_path / "verdict dir" / "verdict.json"
    verdict.parent.mkdir()
    failure = "torch: does not see the GPU (CPU-only build or driver mismatch)"
    verdict.write_text(json.dumps({"ok": False, "failures": [failure], "figures": {}}))

    rows = report_rows({"state": _state(tmp_path, []), "interpreter": "/usr/bin/python3"})
    caffe = [value for label, value in rows if label == "Caffe"]
    assert caffe == [f"{prefix}, no build key: unfinished build"]
    assert ("", f"NOT importable in /usr/bin/python3: no .pth names {prefix}/python") in rows
    [speed] = [value for label, value in rows if label == "Speed check"]
    assert speed.startswith("FAILED, ") and speed.endswith("UTC: nothing measured")
    assert ("", f"! {failure}") in rows

    verdict.write_text('{"ok": tru')
    state = _state(tmp_path, [])
    assert state["speed_check"]["verdict"] is None
    [speed] = [value for label, value in report_rows({"state": state}) if label == "Speed check"]
    assert speed.startswith(f"FAILED: unreadable verdict {verdict} (")


def test_state_needs_the_script_output() -> None:
    from pyinfra.api.exceptions import FactProcessError

    with pytest.raises(FactProcessError):
        parse_report_state(["sh: 1: Syntax error"])
