"""The compatibility rules (``files/compat.yml``) and the lookups over them (pure Python).

Each table row cites its source in the YAML file; these functions answer one question each:
which GCC an nvcc accepts, which CUDA a driver runs, which toolkit targets an arch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from deploys.lib.versions import major_minor, vstr, vtuple

RULES_FILE = Path(__file__).resolve().parents[2] / "files" / "compat.yml"


@dataclass(frozen=True)
class Rules:
    """The parsed ``files/compat.yml``."""

    raw: dict[str, Any]

    @property
    def nvcc_host_gcc(self) -> list[dict[str, Any]]:
        return self.raw["nvcc_host_gcc"]

    @property
    def gpu_arch(self) -> dict[str, dict[str, Any]]:
        return {row["cc"]: row for row in self.raw["gpu_arch"]}

    @property
    def min_driver(self) -> list[dict[str, str]]:
        return self.raw["driver_cuda"]["min_driver"]

    @property
    def minor_version_compat(self) -> dict[str, str]:
        return self.raw["driver_cuda"]["minor_version_compat"]["majors"]

    @property
    def cudnn_majors(self) -> dict[str, list[str]]:
        return self.raw["cudnn"]["majors"]

    @property
    def torch(self) -> dict[str, Any]:
        return self.raw["torch"]

    @property
    def tensorflow(self) -> dict[str, Any]:
        return self.raw["tensorflow"]

    @property
    def distro_gcc(self) -> list[dict[str, Any]]:
        return self.raw["distro_gcc"]


@cache
def load_rules(path: Path = RULES_FILE) -> Rules:
    """Parse the rules file once."""
    return Rules(yaml.safe_load(path.read_text()))


def _row_for(rows: list[dict[str, Any]], version: str, key: str = "from") -> dict[str, Any] | None:
    """The last row whose ``key`` version is ≤ ``version`` (rows sorted ascending)."""
    found = None
    for row in rows:
        if vtuple(row[key]) <= vtuple(version):
            found = row
    return found


def nvcc_gcc_range(rules: Rules, cuda_version: str) -> tuple[int, int, dict[str, Any]] | None:
    """GCC majors nvcc ``cuda_version`` accepts: ``(min, max, rule)``, or None if unknown."""
    row = _row_for(rules.nvcc_host_gcc, cuda_version)
    if row is None:
        return None
    return row["gcc_min"], row["gcc_max"], row


def arch_supported(rules: Rules, cc: str, cuda_version: str) -> bool | None:
    """Whether toolkit ``cuda_version`` can generate SASS for ``cc``; None if ``cc`` is unknown."""
    row = rules.gpu_arch.get(cc)
    if row is None:
        return None
    mm = major_minor(cuda_version)
    if mm < major_minor(row["cuda_min"]):
        return False
    return not ("cuda_max" in row and mm > major_minor(row["cuda_max"]))


def arch_range_text(rules: Rules, cc: str) -> str:
    row = rules.gpu_arch[cc]
    if "cuda_max" in row:
        return f"CUDA {row['cuda_min']}-{row['cuda_max']}"
    return f"CUDA ≥ {row['cuda_min']}"


def driver_min_for(rules: Rules, cuda_version: str) -> str | None:
    """The driver a toolkit needs at full compatibility (None when older than the table)."""
    row = _row_for(rules.min_driver, vstr(major_minor(cuda_version)), key="cuda")
    return row["driver"] if row else None


def driver_max_cuda(rules: Rules, driver_version: str) -> str | None:
    """Newest CUDA major.minor that ``driver_version`` runs at full compatibility."""
    best = None
    for row in rules.min_driver:
        if vtuple(row["driver"]) <= vtuple(driver_version):
            best = row["cuda"]
    return best


def driver_runs(rules: Rules, driver: Mapping[str, Any], cuda_version: str) -> tuple[bool, str]:
    """Whether the driver runs code built with ``cuda_version``: ``(ok, how)``.

    ``how`` is ``"full"`` (the driver's CUDA version is at least the toolkit's), ``"minor"``
    (same major, driver new enough for CUDA minor version compatibility) or why not.
    """
    userspace = driver.get("userspace_version")
    max_cuda = driver.get("max_cuda_version") or (
        driver_max_cuda(rules, userspace) if userspace else None
    )
    if max_cuda and major_minor(cuda_version) <= major_minor(max_cuda):
        return True, "full"
    major = str(major_minor(cuda_version)[0])
    floor = rules.minor_version_compat.get(major)
    if userspace and floor and vtuple(userspace) >= vtuple(floor):
        return True, "minor"
    return False, f"driver {userspace or '?'} runs CUDA ≤ {max_cuda or '?'}"
