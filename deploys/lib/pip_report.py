"""What pip and the frameworks report back: installed lists, index offers, import reports.

Pure logic over the outputs of ``facts/pip_stack.py``: which specs no index offers (checked
before anything changes) and what is wrong after installing (imports, GPUs not seen).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from deploys.lib.pip_stack import Decision, Stack
from deploys.lib.versions import major_minor


def parse_pip_list(text: str) -> dict[str, set[str]]:
    """Parse ``pip list --format=json`` into canonical name → set of versions."""
    out: dict[str, set[str]] = {}
    for item in json.loads(text or "[]"):
        out.setdefault(canonicalize_name(item["name"]), set()).add(str(item["version"]))
    return out


def offered_versions(name: str, files: Iterable[str]) -> set[Version]:
    """Versions of ``name`` among index/find-links file names (wheels and sdists)."""
    versions: set[Version] = set()
    cname = canonicalize_name(name)
    for filename in files:
        base = filename.rsplit("/", 1)[-1].split("#", 1)[0]
        try:
            if base.endswith(".whl"):
                wname, version, _b, _t = parse_wheel_filename(base)
            elif base.endswith((".tar.gz", ".zip")):
                wname, version = parse_sdist_filename(base)
            else:
                continue
        except ValueError:
            continue
        if wname == cname:
            versions.add(version)
    return versions


def unavailable(
    decisions: Iterable[Decision], offered: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Errors for requirements to install that no index or find-links directory offers.

    + decisions: from ``decide``; only requirements to install are checked (an offline rerun
      with everything installed needs no index)
    + offered: ``IndexFiles`` fact: distribution name → ``{"files": [...], "errors": [...]}``
    """
    errors = []
    for d in decisions:
        if not d.install:
            continue
        dist = d.req.install.split("[", 1)[0]
        entry = offered.get(dist) or {"files": [], "errors": []}
        versions = offered_versions(dist, entry.get("files", []))
        spec = SpecifierSet(d.req.install_spec)
        if any(spec.contains(v, prereleases=True) for v in versions):
            continue
        if entry.get("errors") and not versions:
            errors.append(f"{dist}: could not list the index ({'; '.join(entry['errors'])})")
        elif versions:
            newest = ", ".join(str(v) for v in sorted(versions)[-3:])
            errors.append(f"{dist}{d.req.install_spec}: no such release (newest offered: {newest})")
        else:
            errors.append(f"{dist}: no such package on the index")
    return errors


def import_name(name: str) -> str:
    """The module the verification step imports for a requirement's name."""
    return "tensorflow" if name == "tensorflow-cpu" else name.replace("-", "_")


def problems(stack: Stack, report: Mapping[str, Any]) -> list[str]:
    """What is wrong in a ``FrameworkReport``: import errors, GPU frameworks that see no GPU.

    Each line names the framework and, for a missing GPU, the likely reason (a CPU build, a
    wheel built for a newer CUDA than the driver supports, CUDA libraries that did not load).
    """
    out = []
    driver = stack.plan.cuda_tuple
    for req in stack.requirements:
        module = import_name(req.name)
        info = report.get(module) or {}
        if "error" in info or not info:
            out.append(f"{module} does not import: {info.get('error', 'no report')}")
            continue
        if module not in stack.expect_gpu or info.get("gpu"):
            continue
        version, built = info.get("version"), info.get("cuda")
        if not built:
            why = "it is a CPU-only build"
        elif driver and major_minor(built) > driver:
            why = (
                f"its wheel is built for CUDA {built}, newer than the driver supports "
                f"(CUDA {stack.plan.cuda}): update the driver or pin an older build"
            )
        else:
            why = (
                f"it is built for CUDA {built} but the CUDA libraries or the driver did not "
                "load (check nvidia-smi, and that the nvidia-* pip packages are installed)"
            )
        out.append(f"{module} {version} sees no GPU: {why}")
    return out


def summary(stack: Stack, report: Mapping[str, Any]) -> str:
    """One line: each framework's version and the devices it sees."""
    parts = []
    for req in stack.requirements:
        module = import_name(req.name)
        info = report.get(module) or {}
        devices = info.get("devices")
        where = f" [{', '.join(devices)}]" if devices else ""
        parts.append(f"{module} {info.get('version', '?')}{where}")
    return f"Python {report.get('python', '?')}: " + ", ".join(parts)
