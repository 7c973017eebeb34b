"""Host compiler facts: which gcc/g++ are installed, which is the default, alternatives state."""

from __future__ import annotations

import re
from typing import TypedDict

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


class CompilerDict(TypedDict):
    default: str | None
    installed: dict[str, str]


class AlternativeDict(TypedDict):
    current: str | None
    choices: list[str]


HostCompilersDict = TypedDict(
    "HostCompilersDict",
    {"gcc": CompilerDict, "g++": CompilerDict, "alternatives": dict[str, AlternativeDict]},
)

COMPILERS = ("gcc", "g++")

_COMMAND = r"""
for c in gcc g++; do
  echo "@default $c"
  if command -v "$c" >/dev/null 2>&1; then
    LC_ALL=C "$c" -dumpfullversion -dumpversion 2>/dev/null
  fi
done
for f in /usr/bin/gcc-[0-9]* /usr/bin/g++-[0-9]*; do [ -x "$f" ] && echo "@installed $f"; done
for c in gcc g++; do
  echo "@alternatives $c"
  LC_ALL=C update-alternatives --query "$c" 2>/dev/null
done
true
""".strip()

_VERSION = re.compile(r"\d+(?:\.\d+)*")
_INSTALLED = re.compile(r"/usr/bin/(gcc|g\+\+)-(\d+(?:\.\d+)*)")


def parse_host_compilers(output: list[str]) -> HostCompilersDict:
    """Parse the sectioned output of ``HostCompilers.command``."""
    result: HostCompilersDict = {
        "gcc": {"default": None, "installed": {}},
        "g++": {"default": None, "installed": {}},
        "alternatives": {c: {"current": None, "choices": []} for c in COMPILERS},
    }
    section, name = "", ""
    for raw in output:
        line = raw.strip()
        if not line:
            continue
        if line.startswith("@default "):
            section, name = "default", line.split(" ", 1)[1]
        elif line.startswith("@installed "):
            path = line.split(" ", 1)[1]
            m = _INSTALLED.fullmatch(path)
            if not m:
                raise FactProcessError(f"unexpected compiler path: {line!r}")
            result[m.group(1)]["installed"][m.group(2)] = path  # type: ignore[literal-required]
            section = ""
        elif line.startswith("@alternatives "):
            section, name = "alternatives", line.split(" ", 1)[1]
        elif section == "default" and name in COMPILERS:
            if not _VERSION.fullmatch(line):
                raise FactProcessError(f"unexpected {name} -dumpfullversion output: {line!r}")
            result[name]["default"] = line  # type: ignore[literal-required]
        elif section == "alternatives" and name in COMPILERS:
            alt = result["alternatives"][name]
            key, _, value = line.partition(":")
            value = value.strip()
            if key == "Value":
                alt["current"] = None if value in ("", "none") else value
            elif key == "Alternative":
                alt["choices"].append(value)
        else:
            raise FactProcessError(f"unexpected output: {line!r}")
    return result


class HostCompilers(FactBase[HostCompilersDict]):
    """
    Returns the host C/C++ compilers: defaults, every installed ``gcc-N``/``g++-N``, alternatives.

    Shape: ``{"gcc": {"default": "12.2.0" | None, "installed": {"12": "/usr/bin/gcc-12"}},
    "g++": {...}, "alternatives": {"gcc": {"current": path | None, "choices": [path]},
    "g++": {...}}}``. A host without compilers gives defaults of None and empty maps.

    **Example:**

    .. code:: python

        compilers = host.get_fact(HostCompilers)
        has_gcc_11 = "11" in compilers["g++"]["installed"]
    """

    @override
    @staticmethod
    def default() -> HostCompilersDict:
        return parse_host_compilers([])

    @override
    def command(self) -> str:
        return _COMMAND

    @override
    def process(self, output: list[str]) -> HostCompilersDict:
        return parse_host_compilers(output)
