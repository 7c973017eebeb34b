"""Debian alternatives (``update-alternatives``) and the compiler ``gcc`` runs by default."""

from __future__ import annotations

import re
from typing import TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from typing_extensions import override


class AlternativeDict(TypedDict):
    priority: int
    slaves: dict[str, str]


class AlternativesDict(TypedDict):
    name: str
    link: str
    status: str
    best: str | None
    value: str | None
    slaves: dict[str, str]
    alternatives: dict[str, AlternativeDict]


def parse_query(lines: list[str]) -> AlternativesDict | None:
    """Parse ``update-alternatives --query NAME`` output; None when the group does not exist."""
    head: dict[str, str] = {}
    head_slaves: dict[str, str] = {}
    alternatives: dict[str, AlternativeDict] = {}
    current: AlternativeDict | None = None
    in_slaves = False
    for raw in lines:
        if not raw.strip():
            in_slaves = False
            continue
        if raw.startswith(" ") and in_slaves:
            name, _, path = raw.strip().partition(" ")
            (current["slaves"] if current is not None else head_slaves)[name] = path.strip()
            continue
        key, _, value = raw.partition(":")
        value = value.strip()
        in_slaves = key == "Slaves"
        if key == "Alternative":
            current = {"priority": 0, "slaves": {}}
            alternatives[value] = current
        elif key == "Priority" and current is not None:
            current["priority"] = int(value)
        elif current is None and key in ("Name", "Link", "Status", "Best", "Value"):
            head[key] = value
    if "Name" not in head:
        return None
    value = head.get("Value")
    return {
        "name": head["Name"],
        "link": head.get("Link", ""),
        "status": head.get("Status", ""),
        "best": head.get("Best"),
        "value": None if value in (None, "none") else value,
        "slaves": head_slaves,
        "alternatives": alternatives,
    }


class Alternatives(FactBase[AlternativesDict | None]):
    """
    Returns one alternatives group as ``update-alternatives --query`` describes it.

    + group: the group, e.g. ``gcc``

    ``{name, link, status ("auto"/"manual"), best, value, slaves: {name: link},
    alternatives: {path: {priority, slaves: {name: path}}}}``, or None when the group does not
    exist (or the host has no ``update-alternatives``).

    **Example:**

    .. code:: python

        host.get_fact(Alternatives, group="gcc")
    """

    requires_command = "update-alternatives"

    @override
    def command(self, group: str) -> StringCommand:
        return StringCommand(
            "LC_ALL=C update-alternatives --query", QuoteString(group), "2>/dev/null || true"
        )

    @override
    def process(self, output: list[str]) -> AlternativesDict | None:
        return parse_query(output)


class GccMajor(FactBase[int | None]):
    """
    Returns the major version of the compiler that ``gcc`` (on PATH) runs, or None without gcc.

    **Example:**

    .. code:: python

        host.get_fact(GccMajor)  # 12
    """

    @override
    def command(self) -> str:
        return "LC_ALL=C gcc -dumpversion 2>/dev/null || true"

    @override
    def process(self, output: list[str]) -> int | None:
        m = re.match(r"(\d+)", "".join(output).strip())
        return int(m.group(1)) if m else None
