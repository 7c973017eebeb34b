"""NVIDIA GPU facts pyinfra core lacks: the GPUs nvidia-smi sees, and the driver's state.

Both facts read nvidia-smi's machine-readable output (``--query-gpu ... --format=csv``) with
``LC_ALL=C``. A host without nvidia-smi, without GPUs, or whose driver cannot be reached gives the
empty default; output that is none of the known shapes raises ``FactProcessError`` naming the line.
"""

from __future__ import annotations

import re
from typing import TypedDict

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


class GpuDict(TypedDict):
    index: int
    name: str
    uuid: str
    pci_bus_id: str
    memory_total_mib: int
    compute_capability: str
    mig_mode: str | None


class DriverDict(TypedDict):
    userspace_version: str | None
    kernel_module_version: str | None
    max_cuda_version: str | None
    mismatch: bool


# nvidia-smi's answers when it works but there is nothing to list, or the driver is unreachable.
# Each of these means "no usable GPU": the fact then gives [] instead of failing the host.
NO_GPU_MESSAGES = (
    "No devices were found",
    "NVIDIA-SMI has failed",  # "... because it couldn't communicate with the NVIDIA driver"
    "Make sure that the latest NVIDIA driver is installed and running",
    "Please make sure that the latest NVIDIA driver is installed and running",
    "Failed to initialize NVML",
    "NVML library version",
    "Driver Not Loaded",
    "Unable to determine the device handle",
    "is not a valid field to query",  # an older driver: the next, shorter query follows
)

# Compute capability by GPU name, for drivers whose nvidia-smi has no ``compute_cap`` field
# (before R510). First match wins, so more specific names come first. Source: NVIDIA's table,
# https://developer.nvidia.com/cuda-gpus
CC_BY_NAME: tuple[tuple[str, str], ...] = (
    (r"\bGB?200\b|\bB100\b", "10.0"),
    (r"RTX 50\d0|RTX PRO \d+ Blackwell", "12.0"),
    (r"\bG?H100\b|\bG?H200\b|\bH800\b|\bH20\b", "9.0"),
    (r"\bL4\b|\bL40S?\b|\bL20\b|RTX 40\d0|RTX \d+ Ada", "8.9"),
    (r"\bA100\b|\bA800\b|\bA30\b", "8.0"),
    (r"RTX 30\d0|\bA10G?\b|\bA40\b|\bA16\b|\bA2\b|RTX A\d+|\bA\d000\b", "8.6"),
    (r"RTX 20\d0|GTX 16\d0|\bT4\b|Quadro RTX|TITAN RTX|\bT\d{3,4}\b", "7.5"),
    (r"\bV100|TITAN V\b|GV100", "7.0"),
    (r"\bP100\b|GP100", "6.0"),
    (r"GTX 10\d0|\bP4\b|\bP40\b|\bP6\b|TITAN Xp|TITAN X \(Pascal\)|Quadro P\d+", "6.1"),
    (r"\bM10\b|GTX 750|\bM\d{3,4}M?\b", "5.0"),
    (r"\bM60\b|\bM40\b|\bM6\b|\bM4\b|GTX 9\d0|GTX TITAN X\b|TITAN X\b|Quadro M\d+", "5.2"),
    (r"\bK80\b", "3.7"),
    (r"\bK40|\bK20|GTX TITAN\b|GTX 780", "3.5"),
    (r"\bK10\b|GTX 6\d0|GTX 7[67]0|GRID K", "3.0"),
)


def compute_capability_from_name(name: str) -> str:
    """The compute capability ("8.6") of a GPU named as nvidia-smi names it; "" when unknown."""
    for pattern, cc in CC_BY_NAME:
        if re.search(pattern, name):
            return cc
    return ""


def _na(value: str) -> bool:
    return value.startswith("[") or value in ("N/A", "")


# The GPU query, from the newest field set to the oldest: a driver that rejects a field prints
# 'Field "x" is not a valid field to query.' and exits non-zero, and the next query runs.
_GPU_FIELDS = ("index", "name", "uuid", "pci.bus_id", "memory.total")
_QUERIES = (
    (*_GPU_FIELDS, "mig.mode.current", "compute_cap"),
    (*_GPU_FIELDS, "mig.mode.current"),
    _GPU_FIELDS,
)


def _query(fields: tuple[str, ...]) -> str:
    return f"LC_ALL=C nvidia-smi --query-gpu={','.join(fields)} --format=csv,noheader,nounits 2>&1"


def parse_gpu_rows(output: list[str]) -> list[GpuDict]:
    """Parse nvidia-smi ``--query-gpu`` CSV rows (any of the three field sets) into GPUs."""
    gpus: list[GpuDict] = []
    for line in output:
        line = line.strip()
        if not line or any(msg in line for msg in NO_GPU_MESSAGES):
            continue
        cells = [c.strip() for c in line.split(", ")]
        if len(cells) not in (5, 6, 7) or not cells[0].isdigit():
            raise FactProcessError(f"unexpected nvidia-smi output line: {line!r}")
        name = cells[1]
        memory = cells[4]
        if not (memory.isdigit() or _na(memory)):
            raise FactProcessError(f"unexpected memory.total in nvidia-smi line: {line!r}")
        mig = cells[5] if len(cells) >= 6 and not _na(cells[5]) else None
        cc = cells[6] if len(cells) == 7 and not _na(cells[6]) else ""
        if cc and not re.fullmatch(r"\d+\.\d+", cc):
            raise FactProcessError(f"unexpected compute_cap in nvidia-smi line: {line!r}")
        gpus.append(
            {
                "index": int(cells[0]),
                "name": name,
                "uuid": cells[2],
                "pci_bus_id": cells[3],
                "memory_total_mib": int(memory) if memory.isdigit() else 0,
                "compute_capability": cc or compute_capability_from_name(name),
                "mig_mode": mig,
            }
        )
    # An older driver answers the first (failed) query with an error and a later one with rows;
    # a GPU is listed once even if two queries answered.
    seen: dict[int, GpuDict] = {}
    for gpu in gpus:
        seen.setdefault(gpu["index"], gpu)
    return sorted(seen.values(), key=lambda g: g["index"])


class NvidiaGpus(FactBase[list[GpuDict]]):
    """
    Returns the NVIDIA GPUs nvidia-smi sees, one dict per GPU.

    Keys: ``index``, ``name``, ``uuid``, ``pci_bus_id``, ``memory_total_mib``,
    ``compute_capability`` (``"8.6"``; from a table of GPU names when the driver's nvidia-smi
    has no ``compute_cap`` field, ``""`` when unknown) and ``mig_mode`` (``"Enabled"``,
    ``"Disabled"``, or ``None`` where MIG does not apply).

    ``[]`` when nvidia-smi is absent, finds no devices, or cannot talk to the driver.

    **Example:**

    .. code:: python

        gpus = host.get_fact(NvidiaGpus)
        archs = sorted({gpu["compute_capability"] for gpu in gpus})
    """

    requires_command = "nvidia-smi"

    @override
    @staticmethod
    def default() -> list[GpuDict]:
        return []

    @override
    def command(self) -> str:
        return " || ".join(_query(q) for q in _QUERIES) + " || true"

    @override
    def process(self, output: list[str]) -> list[GpuDict]:
        return parse_gpu_rows(output)


_SMI_VERSIONS = re.compile(r"Driver Version:\s*([\w.]+)(?:.*CUDA Version:\s*([\d.]+|N/A))?")
_NVML_LIB = re.compile(r"NVML library version:\s*([\d.]+)")
_KERNEL_MODULE = re.compile(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)\s")
_LIB_FILE = re.compile(r"libnvidia-ml\.so\.(\d+\.\d+(?:\.\d+)?)$")
_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")


def parse_driver(output: list[str]) -> DriverDict | None:
    """Parse the sectioned output of ``NvidiaDriver.command`` (``@smi``, ``@proc``, ``@sys``,
    ``@lib`` markers) into the driver's state; None when no trace of a driver was found."""
    section = ""
    smi_version = nvml_version = lib_version = None
    proc_version = sys_version = None
    max_cuda = None
    smi_mismatch = False
    for raw in output:
        line = raw.strip()
        if line in ("@smi", "@proc", "@sys", "@lib"):
            section = line
            continue
        if not line:
            continue
        if section == "@smi":
            if "Driver/library version mismatch" in line:
                smi_mismatch = True
            if m := _SMI_VERSIONS.search(line):
                smi_version = m.group(1)
                if m.group(2) and m.group(2) != "N/A":
                    max_cuda = m.group(2)
            elif m := _NVML_LIB.search(line):
                nvml_version = m.group(1)
        elif section == "@proc":
            if line.startswith("NVRM version:"):
                m = _KERNEL_MODULE.search(line + " ")
                if not m:
                    raise FactProcessError(f"unexpected /proc/driver/nvidia/version: {line!r}")
                proc_version = m.group(1)
        elif section == "@sys":
            if not _VERSION.fullmatch(line):
                raise FactProcessError(f"unexpected /sys/module/nvidia/version: {line!r}")
            sys_version = line
        elif section == "@lib":
            if m := _LIB_FILE.search(line):
                lib_version = m.group(1)
        else:
            raise FactProcessError(f"unexpected output before any section: {line!r}")
    userspace = smi_version or lib_version or nvml_version
    kernel = proc_version or sys_version
    if userspace is None and kernel is None:
        return None
    mismatch = smi_mismatch or (
        userspace is not None and kernel is not None and not _same_version(userspace, kernel)
    )
    return {
        "userspace_version": userspace,
        "kernel_module_version": kernel,
        "max_cuda_version": max_cuda,
        "mismatch": mismatch,
    }


def _same_version(a: str, b: str) -> bool:
    """Versions agree where both are given ("550.144" from NVML equals "550.144.03")."""
    pa, pb = a.split("."), b.split(".")
    n = min(len(pa), len(pb))
    return pa[:n] == pb[:n]


class NvidiaDriver(FactBase[DriverDict | None]):
    """
    Returns the NVIDIA driver's userspace and kernel module versions and the newest CUDA it runs.

    Keys: ``userspace_version`` (nvidia-smi's "Driver Version", else the version of the
    installed ``libnvidia-ml.so``), ``kernel_module_version`` (``/proc/driver/nvidia/version``
    or ``/sys/module/nvidia/version``), ``max_cuda_version`` (nvidia-smi's "CUDA Version") and
    ``mismatch`` (true when they differ, e.g. after a driver upgrade without a reboot: the
    classic "Failed to initialize NVML: Driver/library version mismatch").

    None when the host shows no NVIDIA driver at all.

    **Example:**

    .. code:: python

        driver = host.get_fact(NvidiaDriver)
        if driver and driver["mismatch"]:
            ...  # reboot before using the GPU
    """

    @override
    def command(self) -> str:
        return (
            "echo @smi; "
            "if command -v nvidia-smi >/dev/null 2>&1; then "
            "LC_ALL=C nvidia-smi 2>&1 | head -n 20; fi; "
            "echo @proc; cat /proc/driver/nvidia/version 2>/dev/null; "
            "echo @sys; cat /sys/module/nvidia/version 2>/dev/null; "
            "echo @lib; "
            "for f in /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.*.* /usr/lib/aarch64-linux-gnu/"
            "libnvidia-ml.so.*.* /usr/lib64/libnvidia-ml.so.*.* /usr/lib/libnvidia-ml.so.*.* "
            # Colab keeps the host driver's libraries here
            "/usr/lib64-nvidia/libnvidia-ml.so.*.*; "
            'do [ -f "$f" ] && echo "$f"; done; true'
        )

    @override
    def process(self, output: list[str]) -> DriverDict | None:
        return parse_driver(output)
