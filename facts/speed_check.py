"""Speed check state: what the verdict on the host was measured for, and what the stack is now."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


class SpeedCheckStateDict(TypedDict):
    stack: dict[str, Any]
    recorded: dict[str, Any] | None
    verdict: dict[str, Any] | None


class SpeedCheckState(FactBase[SpeedCheckStateDict | None]):
    """
    Returns ``{stack, recorded, verdict}`` from the uploaded speed check script, or None before
    it exists (or when it cannot tell, e.g. an older script that lacks an option).

    + python: the interpreter the check runs with
    + script: the uploaded ``speed_check.py``
    + verdict: the verdict JSON on the host
    + options: the options the check runs with (``--expect``, ``--caffe-prefix``, …)

    ``stack`` is what a verdict depends on now (framework versions, Boost and Caffe build keys,
    GPUs, script, options); ``recorded`` is the stack of the last passed verdict and ``verdict``
    that verdict (both None when there is none).

    **Example:**

    .. code:: python

        host.get_fact(
            SpeedCheckState,
            python="/opt/dlrig/venv/bin/python",
            script="/opt/dlrig/speed_check/speed_check.py",
            verdict="/var/lib/dlrig/speed_check/verdict.json",
            options=["--expect", "caffe", "--caffe-prefix", "/opt/dlrig/caffe"],
        )
    """

    @override
    def command(
        self, python: str, script: str, verdict: str, options: Sequence[str] = ()
    ) -> StringCommand:
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
            *(QuoteString(o) for o in options),
            "|| echo null; fi",
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
        if not isinstance(parsed, dict) or "stack" not in parsed:
            return None  # the script could not tell: the check runs
        return SpeedCheckStateDict(
            stack=parsed["stack"], recorded=parsed.get("recorded"), verdict=parsed.get("verdict")
        )
