"""Speed check state: what the verdict on the host was measured for, and what the stack is now."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


class SpeedCheckStateDict(TypedDict):
    stack: dict[str, Any]
    recorded: dict[str, Any] | None


class SpeedCheckState(FactBase[SpeedCheckStateDict | None]):
    """
    Returns ``{stack, recorded}`` from the uploaded speed check script, or None before it exists.

    + python: the interpreter the check runs with
    + script: the uploaded ``speed_check.py``
    + verdict: the verdict JSON on the host

    ``stack`` is what a verdict depends on now (framework versions, Caffe build, GPUs, script);
    ``recorded`` is the stack of the last passed verdict (None when there is none).

    **Example:**

    .. code:: python

        host.get_fact(
            SpeedCheckState,
            python="/opt/dlrig/venv/bin/python",
            script="/opt/dlrig/speed_check/speed_check.py",
            verdict="/var/lib/dlrig/speed_check/verdict.json",
        )
    """

    @override
    def command(self, python: str, script: str, verdict: str) -> StringCommand:
        return StringCommand(
            "if command -v",
            QuoteString(python),
            ">/dev/null 2>&1 && test -f",
            QuoteString(script),
            "; then LC_ALL=C",
            QuoteString(python),
            QuoteString(script),
            "--state --out",
            QuoteString(verdict),
            "; fi",
        )

    @override
    def process(self, output: list[str]) -> SpeedCheckStateDict | None:
        text = "\n".join(output).strip()
        if not text:
            return None
        try:
            parsed = json.loads(text.splitlines()[-1])
        except ValueError:
            raise FactProcessError(f"speed check state is not JSON: {text[-200:]!r}") from None
        return SpeedCheckStateDict(stack=parsed["stack"], recorded=parsed.get("recorded"))
