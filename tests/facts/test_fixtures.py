"""Fact parsing from captured output: one JSON fixture per case, pyinfra's own test format.

Each ``tests/facts/<module>.<Fact>/<case>.json`` holds ``source`` (where the output came from),
optional ``arg`` (fact arguments), ``command`` / ``requires_command`` (checked when given), the
raw ``output`` lines, and either the expected ``fact`` or ``exception`` (a substring of the
``FactProcessError`` message, which must name the offending line).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from pyinfra.api import StringCommand
from pyinfra.api.exceptions import FactProcessError

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*.*/*.json"))


def _fact(dirname: str) -> Any:
    module, name = dirname.rsplit(".", 1)
    return getattr(importlib.import_module(f"facts.{module}"), name)()


def _call(method: Any, arg: Any) -> Any:
    if not callable(method):
        return method
    if isinstance(arg, dict):
        return method(**arg)
    if isinstance(arg, list):
        return method(*arg)
    return method()


def _command_string(command: Any) -> str:
    if isinstance(command, str):
        return command
    return StringCommand(command).get_raw_value()


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_fact_fixture(path: Path) -> None:
    case = json.loads(path.read_text())
    assert case.get("source"), f"{path}: every fixture says where its output came from"
    fact = _fact(path.parent.name)
    arg = case.get("arg")

    command = _command_string(_call(fact.command, arg))
    assert "LC_ALL=C" in command, "commands run with a fixed locale"
    if "command" in case:
        assert command == case["command"]
    if "requires_command" in case:
        assert _call(fact.requires_command, arg) == case["requires_command"]

    if "exception" in case:
        with pytest.raises(FactProcessError) as info:
            fact.process(case["output"])
        assert case["exception"] in str(info.value)
        return
    # The fact's result must survive JSON (pyinfra's --json output, the report).
    assert json.loads(json.dumps(fact.process(case["output"]))) == case["fact"]


def test_every_fact_has_fixtures() -> None:
    """Each fact class of facts/ has a fixture directory with at least three cases."""
    from pyinfra.api import FactBase

    dirs = {p.parent.name for p in CASES}
    for module in ("gpu", "cuda", "toolchain", "python", "platform", "installed"):
        mod = importlib.import_module(f"facts.{module}")
        for name, obj in vars(mod).items():
            ours = isinstance(obj, type) and obj.__module__ == mod.__name__
            if ours and issubclass(obj, FactBase):
                assert f"{module}.{name}" in dirs
                assert len(list((HERE / f"{module}.{name}").glob("*.json"))) >= 3


def test_default_when_missing() -> None:
    """Facts whose tool may be absent give their documented empty default."""
    from facts.gpu import NvidiaGpus
    from facts.platform import ColabRuntime
    from facts.python import PythonEnv
    from facts.toolchain import HostCompilers

    assert NvidiaGpus().requires_command == "nvidia-smi"
    assert NvidiaGpus.default() == []
    assert PythonEnv.default() is None
    assert ColabRuntime.default()["hosted"] is False
    assert HostCompilers.default()["gcc"] == {"default": None, "installed": {}}
