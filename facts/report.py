"""What dlrig left on a host, for the facts report: Caffe's install and the last speed check.

``deploys/report.py`` reads it once per host; ``deploys/lib/report.py`` formats it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

# Arguments: caffe prefix, its build key file name, the .pth file name, the verdict, then the
# interpreter's site-packages directories. Sections start with "@" (JSON lines never do).
_STATE_SCRIPT = r"""
prefix=$1 key=$2 pth=$3 verdict=$4
shift 4
echo "@caffe_prefix $prefix"
if [ -f "$prefix/python/caffe/__init__.py" ]; then echo "@caffe_package yes"
else echo "@caffe_package no"; fi
for sp in "$@"; do
  if [ -f "$sp/$pth" ] && grep -qxF "$prefix/python" "$sp/$pth"; then
    echo "@caffe_pth $sp/$pth"; break
  fi
done
if [ -f "$prefix/$key" ]; then echo "@caffe_key"; cat "$prefix/$key"; echo; fi
if [ -f "$verdict" ]; then
  echo "@verdict $(stat -c %Y "$verdict") $verdict"; cat "$verdict"; echo
fi
""".strip()


class CaffeStateDict(TypedDict):
    prefix: str
    package: bool  # <prefix>/python/caffe/__init__.py exists
    pth: str | None  # the .pth in the interpreter's site-packages naming <prefix>/python
    key: dict[str, Any] | None  # the recorded build key; None: none or unreadable


class VerdictStateDict(TypedDict):
    path: str
    mtime: int  # when it was written (seconds since the epoch)
    verdict: dict[str, Any] | None  # None: unreadable


class ReportStateDict(TypedDict):
    caffe: CaffeStateDict
    speed_check: VerdictStateDict | None


def _json_or_none(lines: list[str]) -> dict[str, Any] | None:
    try:
        value = json.loads("\n".join(lines))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_report_state(output: list[str]) -> ReportStateDict:
    """Parse ``ReportState``'s sections; output without them is an error."""
    sections: dict[str, tuple[str, list[str]]] = {}
    current: list[str] = []
    for line in output:
        if line.startswith("@"):
            name, _, arg = line[1:].partition(" ")
            current = []
            sections[name] = (arg.strip(), current)
        else:
            current.append(line)
    if "caffe_package" not in sections or "caffe_prefix" not in sections:
        first = next((line for line in output if line.strip()), "")
        raise FactProcessError(f"the report state script printed no result: {first!r}")
    key = sections.get("caffe_key")
    state: ReportStateDict = {
        "caffe": {
            "prefix": sections["caffe_prefix"][0],
            "package": sections["caffe_package"][0] == "yes",
            "pth": sections["caffe_pth"][0] if "caffe_pth" in sections else None,
            "key": _json_or_none(key[1]) if key else None,
        },
        "speed_check": None,
    }
    if "verdict" in sections:
        arg, lines = sections["verdict"]
        mtime, _, path = arg.partition(" ")
        state["speed_check"] = {
            "path": path,
            "mtime": int(mtime) if mtime.isdigit() else 0,
            "verdict": _json_or_none(lines),
        }
    return state


class ReportState(FactBase[ReportStateDict]):
    """
    Returns what dlrig left on the host: Caffe's install and the last speed check verdict.

    + caffe_prefix: Caffe's install prefix (``caffe_prefix``, default ``/opt/dlrig/caffe``)
    + key_name: the build key file inside the prefix (``.dlrig-build-key.json``)
    + pth_name: the ``.pth`` file that makes ``<prefix>/python`` importable
    + verdict: the speed check's verdict on the host
    + site_packages: the interpreter's site-packages directories, searched for ``pth_name``

    ``caffe``: ``prefix``, ``package`` (``<prefix>/python/caffe/__init__.py`` exists), ``pth``
    (the ``.pth`` naming ``<prefix>/python``, or None: ``import caffe`` fails in that
    interpreter), ``key`` (the recorded build key, or None). ``speed_check``: None before the
    first check, else ``path``, ``mtime`` and ``verdict`` (the JSON; None when unreadable).
    One shell command (``LC_ALL=C``), nothing imported; output without its sections raises
    ``FactProcessError``.

    **Example:**

    .. code:: python

        host.get_fact(ReportState, caffe_prefix="/opt/dlrig/caffe",
                      key_name=".dlrig-build-key.json", pth_name="dlrig-caffe.pth",
                      verdict="/var/lib/dlrig/speed_check/verdict.json",
                      site_packages=["/opt/dlrig/venv/lib/python3.11/site-packages"])
    """

    @override
    def command(
        self,
        caffe_prefix: str,
        key_name: str,
        pth_name: str,
        verdict: str,
        site_packages: Sequence[str] = (),
    ) -> StringCommand:
        return StringCommand(
            "LC_ALL=C sh -c",
            QuoteString(_STATE_SCRIPT),
            "report-state",
            QuoteString(caffe_prefix.rstrip("/") or "/"),
            QuoteString(key_name),
            QuoteString(pth_name),
            QuoteString(verdict),
            *(QuoteString(sp) for sp in site_packages),
        )

    @override
    def process(self, output: list[str]) -> ReportStateDict:
        return parse_report_state(output)
