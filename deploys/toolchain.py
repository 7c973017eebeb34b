"""The host compiler nvcc accepts: gcc-N/g++-N next to the system's, registered as alternatives.

The system default (what ``gcc`` runs) stays as it is unless ``toolchain_make_default`` is set:
builds get the compiler explicitly from the plan (``CUDAHOSTCXX``, ``nvcc -ccbin``, Boost's
``toolset=gcc-N``), so nothing else on the host starts compiling with an older GCC.
"""

from __future__ import annotations

import re
from typing import Any

from pyinfra import host
from pyinfra.api import QuoteString, StringCommand, deploy, operation
from pyinfra.facts.deb import DebPackages
from pyinfra.operations import apt

from deploys import apt_packages
from deploys.lib import data
from deploys.preflight import plan_for
from facts.alternatives import Alternatives, GccMajor
from facts.batch import AS_LOGIN_USER, get_facts

PREFIX = "toolchain_"

DEFAULTS: dict[str, Any] = {
    "toolchain_gcc": 0,
    "toolchain_make_default": False,
    "toolchain_allow_unsupported_compiler": False,
    "toolchain_packages": ["build-essential", "ccache"],
}

DOCS: dict[str, str] = {
    "toolchain_gcc": (
        "GCC major to install and build with (e.g. 11); 0: the one preflight picks (the system "
        "default when nvcc accepts it, else the newest the OS offers that nvcc accepts)."
    ),
    "toolchain_make_default": (
        "Also make gcc-N/g++-N what gcc/g++ run (update-alternatives --set); off by default "
        "because it changes the compiler for every other build on the host."
    ),
    "toolchain_allow_unsupported_compiler": (
        "Accept a GCC the toolkit's nvcc does not support (builds pass "
        "-allow-unsupported-compiler), like Spack's allow-unsupported-compilers."
    ),
    "toolchain_packages": "Build tools installed with the compiler.",
}

GROUP = "gcc"
LINK = "/usr/bin/gcc"


def _install_command(major: int) -> StringCommand:
    return StringCommand(
        "update-alternatives --install",
        QuoteString(LINK),
        GROUP,
        QuoteString(f"/usr/bin/gcc-{major}"),
        str(major * 10),
        "--slave /usr/bin/g++ g++",
        QuoteString(f"/usr/bin/g++-{major}"),
    )


def _register(major: int, make_default: bool, group: dict | None):
    """The commands that register gcc-``major`` (g++-N as its slave) in the ``gcc`` group.

    The compiler ``gcc`` ran before is registered too, so it stays selectable. The group is
    left in manual mode on the chosen compiler, so a later registration with a higher priority
    does not switch the default behind the user's back.

    + group: the ``Alternatives`` fact for ``gcc`` (None: no group yet)
    """
    registered = (group or {}).get("alternatives", {})
    if make_default:
        selected = f"/usr/bin/gcc-{major}"
    elif group and group["value"]:
        selected = group["value"]
    else:
        current = host.get_fact(GccMajor, **AS_LOGIN_USER)
        selected = f"/usr/bin/gcc-{current or major}"
    m = re.search(r"/gcc-(\d+)$", selected)
    wanted = {major, int(m.group(1))} if m else {major}
    changed = False
    for m in sorted(wanted):
        entry = registered.get(f"/usr/bin/gcc-{m}")
        if entry is None or entry["slaves"].get("g++") != f"/usr/bin/g++-{m}":
            changed = True
            yield _install_command(m)
    if changed or not group or group["status"] != "manual" or group["value"] != selected:
        yield StringCommand("update-alternatives --set", GROUP, QuoteString(selected))
        return
    host.noop(f"gcc-{major} is registered; gcc runs {selected}")


@operation()
def compiler(packages: list[str], major: int, make_default: bool = False, cache_time: int = 86400):
    """
    Install the compiler's packages (when missing) and register gcc-N with update-alternatives.

    + packages: APT packages (gcc-N, g++-N, build tools); lists refreshed only when one is
      missing (see ``deploys.apt_packages``)
    + major: the GCC major to register in the ``gcc`` alternatives group, with g++-N as slave
    + make_default: select it as ``gcc``; otherwise the compiler ``gcc`` ran before stays
      selected (the group is left in manual mode on it)
    + cache_time: APT lists younger than this are not refreshed (seconds)

    What is installed and the ``gcc`` alternatives group are read in one round trip; the group
    is read again after an install.

    **Example:**

    .. code:: python

        compiler(packages=["gcc-11", "g++-11", "make"], major=11)
    """
    installed, group = get_facts(
        host, [(DebPackages, {}), (Alternatives, {"group": GROUP})], **AS_LOGIN_USER
    )
    if apt_packages.missing(packages, installed or {}):
        yield from apt.packages._inner(
            packages=list(packages), update=True, cache_time=cache_time, no_recommends=True
        )
        group = host.get_fact(Alternatives, group=GROUP, **AS_LOGIN_USER)
    yield from _register(major, make_default, group)


@deploy("Install the host compiler", data_defaults=DEFAULTS)
def toolchain() -> None:
    """
    Install the GCC the plan picked (and build tools), registered with update-alternatives.

    Data keys (see README): ``toolchain_gcc``, ``toolchain_make_default``,
    ``toolchain_allow_unsupported_compiler``, ``toolchain_packages``. The compiler comes from
    ``deploys.preflight.plan_for(host)``: the system default when the CUDA toolkit's nvcc
    accepts it, else the newest gcc-N the OS offers that it accepts (Debian 12 with its CUDA
    11.8 ``nvidia-cuda-toolkit``: gcc-11).

    **Example:**

    .. code:: python

        from deploys.toolchain import toolchain

        toolchain()
    """
    data.check_host_data(host, DEFAULTS)
    plan = plan_for(host)
    major = plan.compiler.gcc_major
    compiler(
        name=f"Install gcc-{major}, g++-{major} and build tools; register gcc-{major} with "
        "update-alternatives",
        packages=[*host.data.toolchain_packages, *plan.compiler.packages],
        major=major,
        make_default=host.data.toolchain_make_default,
        cache_time=24 * 3600,
    )
