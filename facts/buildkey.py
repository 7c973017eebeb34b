"""Build key facts: the recorded key of a source build and the key the host would produce now."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

from deploys.lib import buildkey


class BuildKeyStateDict(TypedDict):
    recorded: dict[str, Any] | None
    expected: dict[str, Any] | None
    missing: list[str]


class BuildKeyState(FactBase[BuildKeyStateDict]):
    """
    Returns the recorded build key at ``path`` and the key the host's tools would give now.

    + spec: ``{"name": …, "inputs": {declared inputs}, "probe": {"cxx": "g++", "python":
      "python3"}}`` (see ``deploys.lib.buildkey``)
    + path: the key file, e.g. ``/opt/dlrig/boost/.dlrig-build-key.json``

    ``recorded`` is None when no (valid) key file exists; ``expected`` is None when a probed
    tool is missing (``missing`` names it); a host without any Python gives both None. The
    probe runs the spec's Python (falling back to ``python3``) with ``deploys/lib/buildkey.py``.

    **Example:**

    .. code:: python

        host.get_fact(BuildKeyState, spec={"name": "boost", "inputs": {}, "probe": {}},
                      path="/opt/dlrig/boost/.dlrig-build-key.json")
    """

    @override
    def default(self) -> BuildKeyStateDict:
        return {"recorded": None, "expected": None, "missing": ["python"]}

    @override
    def command(self, spec: dict[str, Any], path: str) -> StringCommand:
        python = spec.get("probe", {}).get("python") or "python3"
        return StringCommand(
            "export LC_ALL=C; p=$(command -v",
            QuoteString(python),
            "|| command -v python3) &&",
            '"$p" -c',
            buildkey.shipped(buildkey.host_program()),
            "state",
            QuoteString(json.dumps(spec, sort_keys=True)),
            QuoteString(path),
            "|| true",
        )

    @override
    def process(self, output: list[str]) -> BuildKeyStateDict:
        text = "\n".join(output).strip()
        if not text:
            return self.default()
        try:
            state = json.loads(text)
        except ValueError as e:
            raise FactProcessError(f"build key state is not JSON: {text[:200]!r}") from e
        return {
            "recorded": state.get("recorded"),
            "expected": state.get("expected"),
            "missing": list(state.get("missing", [])),
        }
