"""Fleet logic: host key policy checks, and the summary printed after a run over many hosts.

Host keys: pyinfra's own default for ``ssh_strict_host_key_checking`` is ``accept-new`` (trust
on first use, new keys are written to known_hosts). dlrig refuses SSH hosts unless they are
checked strictly (``yes``) or the inventory opts out explicitly with
``fleet_insecure_host_keys=True`` (throwaway hosts). ``host_key_error`` holds that rule.

Summary: one line per host saying ok, or which step it failed at.

pyinfra's own results table counts hosts per operation but names none, and a host that could
not connect only shows up in the connect log. Entry deploys call :func:`install` first; at the
end of a real (not ``--dry``) run this prints, on stderr::

    --> dlrig fleet summary: 7 ok, 1 failed
        gpu-01  ok      3 changed
        gpu-02  FAILED  at connect: unreachable or host key refused (see the connect log)

``format_summary`` is pure and unit-tested; ``install`` is the glue to pyinfra's state
callbacks.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CONNECT_STEP = "connect"
CONNECT_DETAIL = "unreachable or host key refused (see the connect log)"
PREPARE_STEP = "preparing operations"


@dataclass
class HostOutcome:
    """What happened to one host in a run."""

    name: str
    failed_step: str | None = None
    detail: str = ""
    changed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed_step is None


def format_summary(outcomes: Iterable[HostOutcome]) -> str:
    """Render the summary block: a header with counts, then one line per host (by name).

    + outcomes: one ``HostOutcome`` per host in the run (limit applied)
    """
    rows = sorted(outcomes, key=lambda o: o.name)
    failed = [o for o in rows if not o.ok]
    lines = [f"--> dlrig fleet summary: {len(rows) - len(failed)} ok, {len(failed)} failed"]
    width = max((len(o.name) for o in rows), default=0)
    for o in rows:
        if o.ok:
            status = f"ok      {o.changed} changed" if o.changed else "ok      no changes"
        else:
            status = f"FAILED  at {o.failed_step}"
            if o.detail:
                status += f": {o.detail}"
        lines.append(f"    {o.name.ljust(width)}  {status}")
    return "\n".join(lines) + "\n"


STRICT = "yes"


def host_key_error(name: str, uses_ssh: bool, strict: Any, insecure_ok: bool) -> str | None:
    """Return why a host's host key policy is refused, or None when it is fine.

    + name: the host's name, for the message
    + uses_ssh: whether the host is reached over SSH (other connectors have no host keys)
    + strict: the host's ``ssh_strict_host_key_checking`` data (None when unset)
    + insecure_ok: the host's ``fleet_insecure_host_keys`` data (the explicit opt-out)
    """
    if not uses_ssh or insecure_ok or strict == STRICT:
        return None
    shown = "unset (pyinfra's default: accept-new)" if strict is None else repr(strict)
    return (
        f"{name}: ssh_strict_host_key_checking is {shown}; dlrig verifies SSH host keys: "
        f"set ssh_strict_host_key_checking='yes' and ssh_known_hosts_file in the inventory "
        f"(see README, 'Fleets over SSH'), or set fleet_insecure_host_keys=True for "
        f"throwaway hosts"
    )


def _op_name(state: Any, op_hash: str) -> str:
    names = sorted(state.get_op_meta(op_hash).names)
    return names[0] if names else op_hash


def outcomes(state: Any, first_error: dict[Any, str]) -> list[HostOutcome]:
    """Build each host's outcome from pyinfra's state after a run.

    + state: the pyinfra ``State``
    + first_error: host → name of the first operation that failed on it (from callbacks)
    """
    result = []
    for host in state.inventory:
        if not state.is_host_in_limit(host):
            continue
        o = HostOutcome(name=host.name)
        if host not in state.activated_hosts:
            o.failed_step, o.detail = CONNECT_STEP, CONNECT_DETAIL
        elif host in first_error:
            o.failed_step = f'"{first_error[host]}"'
        elif host in state.failed_hosts:
            o.failed_step = PREPARE_STEP
        for op_data in state.ops.get(host, {}).values():
            meta = op_data.operation_meta
            if meta.is_complete() and meta.did_succeed() and meta.did_change():
                o.changed += 1
        result.append(o)
    return result


def install() -> None:
    """Record per-host failures of this run and print the fleet summary when pyinfra exits.

    Call at the top of an entry deploy (it runs once per host; only the first call registers).
    Nothing is printed for ``--dry`` runs or when no operation ran.

    **Example:**

    .. code:: python

        from deploys.lib import fleet_report

        fleet_report.install()
    """
    from pyinfra import state
    from pyinfra.api.state import BaseStateCallback, StateStage

    real_state = state._get_module()
    if getattr(real_state, "_dlrig_fleet_report", False):
        return
    real_state._dlrig_fleet_report = True
    first_error: dict[Any, str] = {}

    class _Recorder(BaseStateCallback):
        @staticmethod
        def operation_host_error(state, host, op_hash, retry_count=0, max_retries=0):
            if retry_count >= max_retries:
                first_error.setdefault(host, _op_name(state, op_hash))

    real_state.add_callback_handler(_Recorder())

    def _print() -> None:
        if real_state.current_stage < StateStage.Execute:
            return
        sys.stderr.write(format_summary(outcomes(real_state, first_error)))
        sys.stderr.flush()

    atexit.register(_print)
