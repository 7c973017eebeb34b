"""What a build cache directory on the host holds."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


class CacheEntryDict(TypedDict):
    name: str
    build_key: str
    size: int
    created_at: str
    mtime: float
    dir: str


_LIST = r"""
import json, pathlib, sys
out = []
for m in sorted(pathlib.Path(sys.argv[1]).glob("*/*/manifest.json")):
    try:
        d = json.loads(m.read_text())
    except (OSError, ValueError):
        continue
    out.append({"name": d.get("name"), "build_key": d.get("build_key"),
                "size": d.get("tarball_size", 0), "created_at": d.get("created_at"),
                "mtime": m.stat().st_mtime, "dir": str(m.parent)})
print(json.dumps(out))
"""


class BuildCacheEntries(FactBase[list[CacheEntryDict]]):
    """
    Returns the complete artifacts (those with a manifest) in a build cache directory.

    + cache: the cache directory on the host; absent or empty gives ``[]``

    **Example:**

    .. code:: python

        host.get_fact(BuildCacheEntries, cache="/content/drive/MyDrive/dlrig-cache")
    """

    requires_command = "python3"

    @override
    def default(self) -> list[CacheEntryDict]:
        return []

    @override
    def command(self, cache: str) -> StringCommand:
        return StringCommand(
            "test -d",
            QuoteString(cache),
            "&& python3 -c",
            QuoteString(_LIST),
            QuoteString(cache),
            "|| echo '[]'",
        )

    @override
    def process(self, output: list[str]) -> list[Any]:
        try:
            return json.loads(output[-1]) if output else []
        except ValueError:
            raise FactProcessError(f"build cache listing is not JSON: {output[-1]!r}") from None
