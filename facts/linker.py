"""The dynamic linker's cache: is it older than its configuration?"""

from __future__ import annotations

from pyinfra.api import FactBase
from typing_extensions import override


class LinkerCacheStale(FactBase[bool]):
    """
    Returns True when ``/etc/ld.so.cache`` is missing or older than ``/etc/ld.so.conf.d`` or a
    file in it: an entry changed after the last successful ``ldconfig`` (which writes the cache
    last), e.g. a run whose ldconfig failed.

    **Example:**

    .. code:: python

        host.get_fact(LinkerCacheStale)
    """

    @override
    def command(self) -> str:
        return (
            "if [ ! -e /etc/ld.so.cache ]; then echo stale; "
            'elif [ -n "$(find /etc/ld.so.conf /etc/ld.so.conf.d -maxdepth 1 '
            '-newer /etc/ld.so.cache 2>/dev/null | head -n 1)" ]; then echo stale; '
            "else echo fresh; fi"
        )

    @override
    def process(self, output: list[str]) -> bool:
        return bool(output) and output[-1].strip() == "stale"
