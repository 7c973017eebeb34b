"""Facts about the local runtime's stack kernel: can the interpreter run it, is its spec current."""

from __future__ import annotations

from typing import TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from typing_extensions import override

from deploys.lib.local_runtime_kernel import kernel_state_script, parse_kernel_state


class StackKernelStateDict(TypedDict):
    python: str | None
    ipykernel: bool
    spec: str | None


class StackKernelState(FactBase[StackKernelStateDict]):
    """
    Returns whether an interpreter can run the stack kernel, and the kernelspec's digest.

    + python: the interpreter (a path, or a name on ``PATH``)
    + spec: the kernelspec file (``kernel.json``)

    ``python``: the interpreter's path (None when it does not exist or cannot run),
    ``ipykernel``: whether it finds ``ipykernel`` (looked up, not imported), ``spec``: the
    SHA-256 of the kernelspec file (None when there is none). One command.

    **Example:**

    .. code:: python

        host.get_fact(StackKernelState, python="/opt/dlrig/venv/bin/python",
                      spec="/usr/local/lib/dlrig/local_runtime/jupyter/kernels/python3/kernel.json")
    """

    @override
    def command(self, python: str, spec: str) -> StringCommand:
        return StringCommand(
            "sh",
            "-c",
            QuoteString(kernel_state_script()),
            "kernel-state",
            QuoteString(python),
            QuoteString(spec),
        )

    @override
    def process(self, output: list[str]) -> StackKernelStateDict:
        state = parse_kernel_state(output)
        return StackKernelStateDict(
            python=state["python"],  # type: ignore[typeddict-item]
            ipykernel=bool(state["ipykernel"]),
            spec=state["spec"],  # type: ignore[typeddict-item]
        )
