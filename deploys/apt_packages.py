"""APT packages present, with the package lists refreshed only when something must be installed.

pyinfra's ``apt.packages(update=True, cache_time=N)`` reads the lists' age (the update stamp and
the host's date: two round trips) before it looks at what is installed, and runs
``apt-get update`` whenever the lists are older than N — so a converged host is not a no-op a day
later, and every no-op run pays those reads on every host of a fleet. ``present`` reads the
installed packages first; only when one is missing does it hand over to ``apt.packages``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt

from facts.batch import AS_LOGIN_USER


def missing(packages: Sequence[str], installed: Mapping[str, set[str]]) -> list[str]:
    """The specs of ``packages`` not satisfied by ``installed`` (name → installed versions).

    + packages: ``name``, ``name:arch`` or ``name=version`` specs, as apt.packages takes them
    + installed: the ``DebPackages`` fact
    """
    out = []
    for spec in packages:
        name, _, version = spec.partition("=")
        name = name.split(":", 1)[0]
        versions = installed.get(name)
        if not versions or (version and version not in versions):
            out.append(spec)
    return out


@operation()
def present(packages: list[str], cache_time: int, no_recommends: bool = False):
    """
    Install APT packages that are missing; lists are refreshed (at most every ``cache_time``
    seconds) only then.

    + packages: package specs (``name``, ``name=version``)
    + cache_time: ``apt-get update`` first unless the lists are younger than this (seconds)
    + no_recommends: ``--no-install-recommends``

    **Example:**

    .. code:: python

        present(packages=["g++", "make"], cache_time=86400, no_recommends=True)
    """
    absent = missing(packages, host.get_fact(DebPackages, **AS_LOGIN_USER))
    if not absent:
        host.noop(f"installed: {' '.join(packages)}")
        return
    yield from apt.packages._inner(
        packages=list(packages), update=True, cache_time=cache_time, no_recommends=no_recommends
    )
