"""Ending a report-only ``pyinfra`` CLI run once every host's facts table is printed.

pyinfra 3.10's CLI asks "Press enter to execute..." after loading any deploy file unless
``-y``, ``--dry`` or ``--json`` is given, even when nothing would change; the report
(``deploys/report.py``) has nothing to execute, so it ends the run itself before that prompt
(which dies with ``EOFError`` without stdin, e.g. in a notebook cell).
"""

from __future__ import annotations

import sys
import weakref
from typing import Any

import click
from pyinfra.api.state import State

# The name of the report's one (no-op) operation: a run holding only these has nothing to do.
REPORT_OP_NAME = "Print the dlrig facts report"


def _cli_params() -> dict[str, Any] | None:
    """The pyinfra CLI's arguments, parsed again by its own click command; None outside the
    CLI. (Click's current context is out of reach: pyinfra loads deploy files in gevent
    greenlets, and click keeps its context per greenlet.)"""
    import pyinfra

    if not getattr(pyinfra, "is_cli", False):
        return None
    from pyinfra_cli.cli import cli

    try:
        context = cli.make_context("pyinfra", sys.argv[1:], resilient_parsing=True)
    except click.ClickException:
        return None
    return dict(context.params)


# Hosts whose report was printed, per run (the deploy file runs once per host).
_PRINTED: weakref.WeakKeyDictionary[State, set[str]] = weakref.WeakKeyDictionary()


def end_run_after_report(state: State, host_name: str) -> None:
    """Once every host's report is printed, end a report-only ``pyinfra`` CLI run: exit 0
    (1 when a host failed) instead of reaching the CLI's "Press enter to execute..." prompt.

    + state: the run's pyinfra state
    + host_name: the host whose report was just printed

    Only the CLI is ended, and only when there is nothing else to run: the report is the
    last deploy file given, every queued operation is the report's own no-op, and the output
    is not ``--json`` (that mode never prompts and prints the results as JSON).
    """
    params = _cli_params()
    if params is None or params.get("json_output"):
        return
    files = params.get("operations") or ()
    if state.current_op_file_number != len(files) - 1:
        return
    if any(state.get_op_meta(op).names != {REPORT_OP_NAME} for op in state.op_meta):
        return
    printed = _PRINTED.setdefault(state, set())
    printed.add(host_name)
    if printed >= {h.name for h in state.inventory.get_active_hosts()}:
        print("--> Report printed; nothing to execute.", file=sys.stderr, flush=True)
        sys.exit(1 if state.failed_hosts else 0)
