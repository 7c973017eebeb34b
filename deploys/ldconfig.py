"""Library directories for the dynamic linker: ``/etc/ld.so.conf.d/dlrig-*.conf`` + ldconfig."""

from __future__ import annotations

import re
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, deploy, operation
from pyinfra.api.operation import OperationMeta

from deploys.lib import data
from deploys.managed import files_exactly
from facts.batch import AS_LOGIN_USER, get_facts
from facts.linker import LinkerCacheStale
from facts.managed import OwnedFiles

PREFIX = "ldconfig_"

DEFAULTS: dict[str, Any] = {
    "ldconfig_entries": {},
}

DOCS: dict[str, str] = {
    "ldconfig_entries": (
        "Library directories to register: entry name -> list of absolute dirs, written to "
        "/etc/ld.so.conf.d/dlrig-data-<name>.conf; dropped entries are removed."
    ),
}

CONF_DIR = "/etc/ld.so.conf.d"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def conf_path(owner: str, name: str) -> str:
    """Where an owner's entry lives: ``/etc/ld.so.conf.d/dlrig-<owner>-<name>.conf``."""
    return f"{CONF_DIR}/dlrig-{owner}-{name}.conf"


def render(dirs: list[str]) -> str:
    """The body of an ld.so.conf.d file for ``dirs``."""
    return "# Managed by dlrig; changes are overwritten.\n" + "".join(f"{d}\n" for d in dirs)


def check_entries(owner: str, entries: dict[str, list[str]]) -> None:
    """Raise DeployError for a bad owner, entry name or non-absolute directory."""
    if not _NAME.match(owner):
        raise DeployError(f"ldconfig owner {owner!r} must match {_NAME.pattern}")
    if not isinstance(entries, dict):
        raise DeployError(f"ldconfig entries must map names to lists of dirs, got {entries!r}")
    for name, dirs in entries.items():
        if not _NAME.match(str(name)):
            raise DeployError(f"ldconfig entry name {name!r} must match {_NAME.pattern}")
        if isinstance(dirs, str) or not all(str(d).startswith("/") for d in dirs):
            raise DeployError(f"ldconfig entry {name!r}: give a list of absolute directories")


@operation()
def entries(owner: str, wanted: dict[str, list[str]]):
    """
    Make the owner's ``dlrig-<owner>-*.conf`` files exactly ``wanted``; run ``ldconfig`` when
    one changed, or when the linker cache is older than its configuration.

    + owner: who owns the entries (``boost``, ``caffe``, ``data``, …); other owners' files and
      files dlrig did not write are never touched
    + wanted: entry name → library directories; an owner's file not named here is removed

    The stale-cache check catches what a change alone cannot: an entry written by an earlier
    run whose ``ldconfig`` failed or was interrupted. Both are read in one round trip.

    **Example:**

    .. code:: python

        entries(owner="boost", wanted={"lib": ["/opt/dlrig/boost/lib"]})
    """
    check_entries(owner, wanted)
    pattern = f"dlrig-{owner}-*.conf"
    owned, stale = get_facts(
        host,
        [(OwnedFiles, {"path": CONF_DIR, "fname": pattern}), (LinkerCacheStale, {})],
        **AS_LOGIN_USER,
    )
    changed = False
    for command in files_exactly._inner(
        directory=CONF_DIR,
        pattern=pattern,
        wanted={conf_path(owner, n).rsplit("/", 1)[1]: render(list(d)) for n, d in wanted.items()},
        owned=owned,
    ):
        changed = True
        yield command
    if changed or stale:
        yield "ldconfig"
    else:
        host.noop("the linker cache is newer than its configuration")


def register(owner: str, wanted: dict[str, list[str]]) -> OperationMeta:
    """
    Register an owner's library directories and run ``ldconfig`` when they changed.

    Other deploys call this (the Boost deploy registers its ``lib`` dir, say). Returns the
    operation, so callers can chain on its change.

    + owner: the calling deploy's name
    + wanted: entry name → library directories
    """
    return entries(name=f"Register library directories of {owner}", owner=owner, wanted=wanted)


@deploy("Register library directories", data_defaults=DEFAULTS)
def ldconfig() -> None:
    """
    Register the library directories named in host data with the dynamic linker.

    Data keys (see README): ``ldconfig_entries`` — entry name → list of directories, written
    to ``/etc/ld.so.conf.d/dlrig-data-<name>.conf``. An entry dropped from the data is removed;
    ``ldconfig`` runs only when an entry changed.

    **Example:**

    .. code:: python

        from deploys.ldconfig import ldconfig

        ldconfig()
    """
    data.check_host_data(host, DEFAULTS)
    wanted = host.data.ldconfig_entries
    check_entries("data", wanted)
    register("data", wanted)
