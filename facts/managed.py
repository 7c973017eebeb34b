"""Files a dlrig deploy owns in a directory: their mode and content hash, in one round trip."""

from __future__ import annotations

from typing import TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError


class OwnedFile(TypedDict):
    mode: int
    sha1: str


class OwnedFilesDict(TypedDict):
    directory: bool
    files: dict[str, OwnedFile]


class OwnedFiles(FactBase[OwnedFilesDict]):
    """
    Whether a directory exists, and each regular file in it matching a pattern: mode, sha1.

    Replaces a ``FindFiles`` fact plus, per file, the ``File`` and ``Sha1File`` facts that
    ``files.put`` reads: one command instead of three or more per file.

    + path: the directory
    + fname: shell pattern of the file names (``find -name``)

    **Example:**

    .. code:: python

        host.get_fact(OwnedFiles, path="/etc/ld.so.conf.d", fname="dlrig-data-*.conf")
        # {"directory": True, "files": {"/etc/ld.so.conf.d/dlrig-data-cuda.conf":
        #     {"mode": 0o644, "sha1": "…"}}}
    """

    def command(self, path: str, fname: str) -> StringCommand:
        return StringCommand(
            "if test -d",
            QuoteString(path),
            "; then echo @dir; find",
            QuoteString(path),
            "-maxdepth 1 -type f -name",
            QuoteString(fname),
            "| LC_ALL=C sort | while IFS= read -r f; do"
            ' echo "@file $(stat -c %a "$f") $(sha1sum < "$f" | cut -d" " -f1) $f";'
            " done; fi",
        )

    def default(self) -> OwnedFilesDict:
        return {"directory": False, "files": {}}

    def process(self, output: list[str]) -> OwnedFilesDict:
        result = self.default()
        for line in output:
            if line == "@dir":
                result["directory"] = True
                continue
            parts = line.split(" ", 3)
            if len(parts) != 4 or parts[0] != "@file":
                raise FactProcessError(f"unexpected line: {line!r}")
            _, mode, sha1, path = parts
            try:
                result["files"][path] = {"mode": int(mode, 8), "sha1": sha1}
            except ValueError:
                raise FactProcessError(f"unexpected mode in line: {line!r}") from None
        return result
