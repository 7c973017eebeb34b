"""Fleet safety and reporting: host keys checked strictly, a per-host summary after the run."""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, deploy

from deploys.lib import data
from deploys.lib import fleet as fleet_lib

PREFIX = "fleet_"

DEFAULTS: dict[str, Any] = {
    "fleet_insecure_host_keys": False,
    "fleet_summary": True,
}

DOCS: dict[str, str] = {
    "fleet_insecure_host_keys": (
        "Opt-out for throwaway hosts: accept SSH hosts whose ssh_strict_host_key_checking is not "
        "'yes' (pyinfra's default, accept-new, trusts a host's key on first use)."
    ),
    "fleet_summary": (
        "Print one line per host at the end of a run: ok (and how many steps changed), or the "
        "step it failed at (connect included)."
    ),
}


def _uses_ssh() -> bool:
    from pyinfra.connectors.ssh import SSHConnector

    return isinstance(host.connector, SSHConnector)


@deploy("Check fleet safety", data_defaults=DEFAULTS)
def fleet() -> None:
    """
    Refuse SSH hosts whose host keys are not verified; print a per-host summary at the end.

    Call first in an entry deploy. Data keys (see README): ``fleet_insecure_host_keys`` — the
    explicit opt-out from strict host key checking; ``fleet_summary`` — print the summary. The
    check raises before any operation is added, naming the host and the data keys to set.

    **Example:**

    .. code:: python

        from deploys.fleet import fleet

        fleet()
    """
    data.check_host_data(host, DEFAULTS)
    error = fleet_lib.host_key_error(
        host.name,
        uses_ssh=_uses_ssh(),
        strict=host.data.get("ssh_strict_host_key_checking"),
        insecure_ok=bool(host.data.fleet_insecure_host_keys),
    )
    if error:
        raise DeployError(error)
    if host.data.fleet_summary:
        fleet_lib.install()
