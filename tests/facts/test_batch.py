"""facts.batch.Facts: several facts in one command, each parsed by its own fact."""

from __future__ import annotations

import subprocess

import pytest
from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError

from facts.batch import Facts


class Lines(FactBase[list[str]]):
    def command(self, text: str) -> str:
        return f"printf '{text}'"

    def default(self) -> list[str]:
        return ["default"]

    def process(self, output: list[str]) -> list[str]:
        return output


class NeedsTool(FactBase[str]):
    requires_command = "dlrig-no-such-tool"
    command = "dlrig-no-such-tool --version"

    def default(self) -> str:
        return "absent"


class Fails(FactBase[str]):
    command = "echo partial; exit 3"


def _run(specs):
    """Run the combined command in a real shell, parse it as pyinfra would."""
    fact = Facts()
    command = fact.command(facts=specs)
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True).stdout
    return fact.process(out.splitlines())


def test_each_fact_gets_exactly_its_own_lines():
    values = _run(
        [
            (Lines, {"text": "a\\nb\\n"}),
            (Lines, {"text": "no newline at the end"}),
            (Lines, {"text": "ends with a blank line\\n\\n"}),
            (Lines, {"text": ""}),
        ]
    )
    assert values == [
        ["a", "b"],
        ["no newline at the end"],
        ["ends with a blank line", ""],
        ["default"],  # no output: the fact's default, as host.get_fact gives
    ]


def test_missing_required_command_gives_the_default():
    assert _run([(NeedsTool, {}), (Lines, {"text": "x\\n"})]) == ["absent", ["x"]]


def test_a_failing_fact_fails_the_read_naming_it():
    with pytest.raises(FactProcessError, match="Fails exited 3"):
        _run([(Lines, {"text": "x\\n"}), (Fails, {})])


def test_output_that_lies_about_markers_is_not_trusted():
    fact = Facts()
    fact.command(facts=[(Lines, {"text": "x"})])
    with pytest.raises(FactProcessError):
        fact.process(["@@dlrig-fact-begin 0", "x"])  # cut off before its exit status
