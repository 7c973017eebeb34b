"""Speed check deploy: what a run expects, the run command, the final fail step (no target)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deploys import speed_check
from facts.speed_check import SpeedCheckState

ALL = ["tensorflow", "torch", "caffe"]


@pytest.mark.parametrize(
    ("components", "packages", "frameworks", "torch_wheels", "expected"),
    [
        # The default stack and a Caffe build: all three must work.
        (["caffe", "pip_stack"], {"tensorflow": "", "torch": ">=2"}, ALL, "index", ALL),
        # A package left out (None) or a component not run is not expected.
        (["pip_stack"], {"tensorflow": "", "torch": None}, ALL, "index", ["tensorflow"]),
        (["caffe"], {"tensorflow": "", "torch": ""}, ALL, "index", ["caffe"]),
        # Only frameworks the check measures; tensorflow-cpu is TensorFlow.
        (["caffe", "pip_stack"], {"tensorflow-cpu": ""}, ["tensorflow"], "index", ["tensorflow"]),
        # Local torch wheels: torch is skipped when none fits, so it cannot be expected.
        (["pip_stack"], {"torch": ""}, ALL, "local", []),
    ],
)
def test_expected_frameworks(components, packages, frameworks, torch_wheels, expected):
    assert (
        speed_check.expected_frameworks(components, packages, frameworks, torch_wheels) == expected
    )


def test_run_command_passes_a_failed_verdict_but_not_a_missing_one():
    command = speed_check._command("/opt/dlrig/venv/bin/python", ["--expect", "caffe,torch"])
    text = command.get_raw_value()
    assert text.startswith("/opt/dlrig/venv/bin/python /opt/dlrig/speed_check/speed_check.py")
    assert text.endswith("--expect caffe,torch")
    # Exit 1 (verdict written, ok: false) succeeds so that the verdict is fetched; exit 2 (no
    # verdict) still fails the operation.
    assert command.connector_arguments["_success_exit_codes"] == [0, 3]


def test_state_fact_passes_the_options_and_tolerates_an_older_script():
    fact = SpeedCheckState()
    text = fact.command("py", "/s.py", "/v.json", ["--expect", "caffe"]).get_raw_value()
    assert "py /s.py --state --out /v.json --expect caffe || echo null; fi" in text
    assert fact.process(["null"]) is None
    assert fact.process(['{"stack": {"a": 1}, "recorded": null}']) == {
        "stack": {"a": 1},
        "recorded": None,
        "verdict": None,
    }


class _Op:
    def __init__(self, changed: bool | None):
        self.changed = changed

    def did_change(self) -> bool:
        if self.changed is None:
            raise RuntimeError("Cannot evaluate operation result before execution")
        return self.changed


def test_any_changed_accepts_operations_that_never_ran():
    assert speed_check._any_changed([_Op(None), _Op(False), _Op(True)])
    assert not speed_check._any_changed([_Op(None), _Op(False)])
    assert not speed_check._any_changed([])


def _host(name: str, logged: list[str]) -> SimpleNamespace:
    return SimpleNamespace(name=name, log_styled=lambda text, **_: logged.append(text))


def test_final_step_fails_the_host_on_a_failed_verdict(monkeypatch):
    state, logged = object(), []
    failed = {"ok": False, "failures": ["caffe: import failed: ImportError: libcaffe.so"]}
    monkeypatch.setitem(speed_check.VERDICTS, (id(state), "h"), {"verdict": failed})
    assert speed_check.fail_on_failed_verdict(state, _host("h", logged)) is False
    assert logged == ["speed check failed:\n  - caffe: import failed: ImportError: libcaffe.so"]


def test_final_step_passes_an_ok_verdict_and_reads_only_this_runs(monkeypatch):
    state, other_run, logged = object(), object(), []
    monkeypatch.setitem(speed_check.VERDICTS, (id(state), "h"), {"verdict": {"ok": True}})
    monkeypatch.setitem(speed_check.VERDICTS, (id(other_run), "g"), {"verdict": {"ok": False}})
    assert speed_check.fail_on_failed_verdict(state, _host("h", logged)) is True
    assert speed_check.this_run_verdict(state, "g") is None
    assert logged == []
