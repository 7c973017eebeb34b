"""Profiles: which packaged deploys an entry script runs, in which order."""

from __future__ import annotations

import importlib
from typing import Any

from pyinfra import host, state
from pyinfra.api import DeployError
from pyinfra.api.operation import OperationMeta

from deploys.lib import entry, run_report

PREFIX = "profile_"

DEFAULTS: dict[str, Any] = {
    "profile_skip": [],
    "profile_add": [],
}

DOCS: dict[str, str] = {
    "profile_skip": (
        "Components the entry deploy leaves out, by name (e.g. ['caffe', 'speed_check']); "
        "preflight always runs."
    ),
    "profile_add": (
        "Optional components to run too: drive (needs the Drive authorization in data), "
        "local_runtime (Colab local runtime on a server)."
    ),
}

# Every component in run order. Each is ``deploys.<name>.<name>``.
ORDER: tuple[str, ...] = (
    "preflight",
    "ca_certificates",
    "apt_sources",
    "toolchain",
    "ldconfig",
    # The pip stack comes before the builds: Boost.Python and pycaffe are built against the
    # plan's interpreter with the NumPy the stack settles on, so a fresh host converges in one
    # run (a NumPy installed after Boost would change its key and rebuild it next run).
    "pip_stack",
    "boost",
    "caffe",
    "drive",
    "local_runtime",
    "datasets",
    "speed_check",
)

# What a profile runs unless told otherwise; the rest of ORDER is opt-in (profile_add).
_DEFAULT_COMPONENTS = tuple(name for name in ORDER if name not in ("drive", "local_runtime"))

PROFILES: dict[str, tuple[str, ...]] = {
    # Hosted Colab or a Colab-like VM: @local as root, no systemd, wiped on disconnect.
    "colab": _DEFAULT_COMPONENTS,
    # SSH GPU servers: systemd, a venv for the pip stack, optional local runtime.
    "server": _DEFAULT_COMPONENTS,
}

# Components whose operations change what the speed check measures.
_STACK_CHANGERS = ("boost", "caffe", "pip_stack")


def components(profile: str, skip: list[str], add: list[str]) -> list[str]:
    """The components a profile runs, in order.

    + profile: ``colab`` or ``server``
    + skip: names to leave out (preflight cannot be left out)
    + add: optional names to run too
    """
    if profile not in PROFILES:
        raise DeployError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}")
    unknown = sorted((set(skip) | set(add)) - set(ORDER))
    if unknown:
        raise DeployError(f"profile_skip/profile_add: unknown component(s) {unknown}")
    if "preflight" in skip:
        raise DeployError("profile_skip: preflight always runs (it checks data before changes)")
    wanted = (set(PROFILES[profile]) | set(add)) - set(skip)
    return [name for name in ORDER if name in wanted]


def run(profile: str) -> None:
    """
    Run a profile's components on the current host, preflight first, speed check last.

    + profile: ``colab`` (hosted Colab / Colab-like VM) or ``server`` (SSH GPU servers)

    The speed check reruns when a build or the pip stack changed something in this run.
    """
    run_report.install()
    entry.register_deploy_file(state.current_deploy_filename)
    after: list[OperationMeta] = []
    ran = components(
        profile, host.data.get("profile_skip") or [], host.data.get("profile_add") or []
    )
    for name in ran:
        function = getattr(importlib.import_module(f"deploys.{name}"), name)
        if name == "speed_check":
            from deploys.speed_check import expected_for_host

            function(after=after, expect=expected_for_host(ran))
            continue
        result = function()
        if name in _STACK_CHANGERS and result is not None:
            after.extend(r for r in _as_list(result) if isinstance(r, OperationMeta))


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]
