"""Whether an install is complete: which of its paths are missing (files, links, directories)."""

from __future__ import annotations

from pyinfra.api import FactBase, QuoteString, StringCommand
from typing_extensions import override


class MissingPaths(FactBase[list[str]]):
    """
    Returns the paths that do not exist on the host, in the order given (``[]``: all there).

    + paths: absolute paths; a symlink counts when its target exists (``test -e``), so
      ``lib/libcaffe.so`` → ``libcaffe.so.1.0.0-rc3`` is present only with its library

    pyinfra's ``File`` fact is False for a symlink, so a build's "done" check over shared
    libraries (``libboost_system.so`` is a link) would always see them missing.

    **Example:**

    .. code:: python

        host.get_fact(MissingPaths, paths=["/opt/dlrig/caffe/lib/libcaffe.so"])
    """

    @override
    def command(self, paths: list[str]) -> StringCommand:
        return StringCommand(
            "LC_ALL=C sh -c",
            QuoteString('for p in "$@"; do [ -e "$p" ] || printf "%s\\n" "$p"; done'),
            "missing-paths",
            *[QuoteString(p) for p in paths],
        )

    @override
    def process(self, output: list[str]) -> list[str]:
        return [line for line in output if line]

    @override
    def default(self) -> list[str]:
        return []
