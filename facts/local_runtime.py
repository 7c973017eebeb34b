"""Facts about the Colab local runtime: is it running, and with which configuration."""

from __future__ import annotations

from typing import TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from typing_extensions import override

from deploys.lib.local_runtime import Layout, parse_status, status_script


class RuntimeStatusDict(TypedDict):
    running: bool
    instance: str | None
    current: str | None


class RuntimeStatus(FactBase[RuntimeStatusDict]):
    """
    Returns whether the local runtime runs, the configuration hash its running instance recorded
    when it started (``instance``) and the hash of the configuration files now (``current``).

    + venv: the runtime's virtualenv (``local_runtime_venv``)
    + supervisor: ``systemd`` (the unit is active) or ``process`` (the supervisor in the
      pidfile is alive)

    A host where the runtime was never installed gives ``running=False`` and both hashes
    ``None``. The hashes are SHA-256 digests over files that include the token, never the token.

    **Example:**

    .. code:: python

        host.get_fact(RuntimeStatus, venv="/opt/dlrig/jupyter", supervisor="process")
    """

    @override
    def command(self, venv: str, supervisor: str) -> StringCommand:
        return StringCommand("sh", "-c", QuoteString(status_script(Layout(venv), supervisor)))

    @override
    def process(self, output: list[str]) -> RuntimeStatusDict:
        status = parse_status(output)
        return RuntimeStatusDict(
            running=bool(status["running"]),
            instance=status["instance"],  # type: ignore[typeddict-item]
            current=status["current"],  # type: ignore[typeddict-item]
        )
