"""CUDA facts pyinfra core lacks: the installed CUDA toolkits and cuDNN.

Both read files and ``nvcc --version`` with ``LC_ALL=C``; a host with none gives the empty
default, and output of an unknown shape raises ``FactProcessError`` naming the line.
"""

from __future__ import annotations

import json
import re
from typing import TypedDict

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


class ToolkitDict(TypedDict):
    version: str
    path: str
    nvcc: str
    is_default: bool
    sdk_version: str | None


class CudnnDict(TypedDict):
    version: str
    where: str


# Where toolkits live: NVIDIA's installers and packages use /usr/local/cuda-X.Y (with
# /usr/local/cuda pointing at the default one); Debian/Ubuntu's nvidia-cuda-toolkit puts nvcc
# in /usr/bin.
_TOOLKITS_COMMAND = r"""
for d in /usr/local/cuda-*; do
  [ -d "$d" ] || continue
  echo "@toolkit $d"
  if [ -f "$d/version.json" ]; then echo "@json"; cat "$d/version.json"; echo; echo "@end";
  elif [ -f "$d/version.txt" ]; then echo "@txt"; cat "$d/version.txt"; echo; fi
  if [ -x "$d/bin/nvcc" ]; then echo "@nvcc $d/bin/nvcc"; LC_ALL=C "$d/bin/nvcc" --version 2>&1; fi
done
if [ -e /usr/local/cuda ]; then echo "@default $(readlink -f /usr/local/cuda)"; fi
n=$(command -v nvcc 2>/dev/null) && {
  echo "@path $(readlink -f "$n")"
  case "$(readlink -f "$n")" in /usr/local/cuda*) ;; *)
    if [ "$n" = /usr/bin/nvcc ]; then echo "@toolkit /usr"; echo "@nvcc /usr/bin/nvcc";
      LC_ALL=C /usr/bin/nvcc --version 2>&1; fi ;;
  esac
}
true
""".strip()

_NVCC_RELEASE = re.compile(r"Cuda compilation tools, release ([\d.]+), V([\d.]+)")
_VERSION_TXT = re.compile(r"CUDA Version ([\d.]+)")
_NVCC_CHATTER = (
    "nvcc: NVIDIA (R) Cuda compiler driver",
    "Copyright (c)",
    "Built on ",
    "Build cuda_",
)


def parse_toolkits(output: list[str]) -> list[ToolkitDict]:
    """Parse the sectioned output of ``CudaToolkits.command`` into toolkits."""
    toolkits: list[dict] = []
    default = path_nvcc = None
    section = ""
    json_lines: list[str] = []
    current: dict | None = None

    def need_current(line: str) -> dict:
        if current is None:
            raise FactProcessError(f"output outside a toolkit section: {line!r}")
        return current

    for raw in output:
        line = raw.rstrip()
        if section == "@json":
            if line == "@end":
                tk = need_current(line)
                try:
                    tk["sdk_version"] = json.loads("\n".join(json_lines))["cuda"]["version"]
                except (ValueError, KeyError, TypeError) as e:
                    raise FactProcessError(
                        f"unreadable {tk['path']}/version.json: {json_lines[:3]!r}"
                    ) from e
                section, json_lines = "", []
            else:
                json_lines.append(line)
            continue
        if not line.strip():
            continue
        if line.startswith("@toolkit "):
            current = {
                "version": None,
                "path": line[len("@toolkit ") :],
                "nvcc": "",
                "is_default": False,
                "sdk_version": None,
            }
            toolkits.append(current)
            section = ""
        elif line == "@json":
            section = "@json"
        elif line == "@txt":
            section = "@txt"
        elif line.startswith("@nvcc "):
            need_current(line)["nvcc"] = line[len("@nvcc ") :]
            section = "@nvcc"
        elif line.startswith("@default "):
            default = line[len("@default ") :]
        elif line.startswith("@path "):
            path_nvcc = line[len("@path ") :]
        elif section == "@txt":
            m = _VERSION_TXT.search(line)
            if not m:
                raise FactProcessError(f"unexpected CUDA version.txt line: {line!r}")
            need_current(line)["sdk_version"] = m.group(1)
        elif section == "@nvcc":
            if m := _NVCC_RELEASE.search(line):
                need_current(line)["version"] = m.group(2)
            elif not line.startswith(_NVCC_CHATTER):
                raise FactProcessError(f"unexpected nvcc --version line: {line!r}")
        else:
            raise FactProcessError(f"unexpected output: {line!r}")

    result: list[ToolkitDict] = []
    for tk in toolkits:
        version = tk["version"] or tk["sdk_version"]
        if not version:
            continue  # an empty or foreign /usr/local/cuda-* directory: nothing to use
        if default is not None:
            is_default = tk["path"] == default
        else:
            is_default = bool(path_nvcc) and path_nvcc == tk["nvcc"]
        result.append(
            {
                "version": version,
                "path": tk["path"],
                "nvcc": tk["nvcc"],
                "is_default": is_default,
                "sdk_version": tk["sdk_version"],
            }
        )
    return result


class CudaToolkits(FactBase[list[ToolkitDict]]):
    """
    Returns every CUDA toolkit on the host.

    Keys: ``version`` (nvcc's full version, ``"12.4.131"``; the SDK version from
    ``version.json``/``version.txt`` for a toolkit without nvcc), ``path``
    (``/usr/local/cuda-12.4``, or ``/usr`` for Debian/Ubuntu's ``nvidia-cuda-toolkit``),
    ``nvcc`` (its path, ``""`` when absent), ``is_default`` (the one ``/usr/local/cuda`` points
    at, else the one whose nvcc is first on ``PATH``) and ``sdk_version`` (``"12.4.1"`` from
    ``version.json``, None when the toolkit has none).

    ``[]`` when there is none.

    **Example:**

    .. code:: python

        default = [tk for tk in host.get_fact(CudaToolkits) if tk["is_default"]]
    """

    @override
    @staticmethod
    def default() -> list[ToolkitDict]:
        return []

    @override
    def command(self) -> str:
        return _TOOLKITS_COMMAND

    @override
    def process(self, output: list[str]) -> list[ToolkitDict]:
        return parse_toolkits(output)


# Headers, most specific first: the default toolkit, system packages (Debian/Ubuntu's
# libcudnn*-dev puts versioned headers under /usr/include/<triplet>/), every toolkit, then the
# nvidia-cudnn-cu* pip wheels of the system and user site-packages.
CUDNN_HEADERS = (
    "/usr/local/cuda/include/cudnn_version.h",
    "/usr/local/cuda/include/cudnn.h",
    "/usr/include/cudnn_version.h",
    "/usr/include/cudnn.h",
    "/usr/include/*-linux-gnu/cudnn_version_v*.h",
    "/usr/include/*-linux-gnu/cudnn_v*.h",
    "/usr/local/cuda-*/include/cudnn_version.h",
    "/usr/local/cuda-*/include/cudnn.h",
    "/usr/local/lib/python3*/dist-packages/nvidia/cudnn/include/cudnn_version.h",
    "/usr/local/lib/python3*/site-packages/nvidia/cudnn/include/cudnn_version.h",
    "/usr/lib/python3/dist-packages/nvidia/cudnn/include/cudnn_version.h",
    "$HOME/.local/lib/python3*/site-packages/nvidia/cudnn/include/cudnn_version.h",
)
_CUDNN_DEFINE = re.compile(r"^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL)\s+(\d+)\s*$")


def parse_cudnn(output: list[str]) -> CudnnDict | None:
    """Parse ``path:#define CUDNN_MAJOR 9`` lines; the first header with all three wins."""
    found: dict[str, dict[str, str]] = {}
    for raw in output:
        line = raw.strip()
        if not line:
            continue
        path, sep, define = line.partition(":")
        m = _CUDNN_DEFINE.match(define.strip()) if sep else None
        if not m:
            raise FactProcessError(f"unexpected cuDNN header line: {line!r}")
        found.setdefault(path, {})[m.group(1)] = m.group(2)
    for path, parts in found.items():
        if {"MAJOR", "MINOR", "PATCHLEVEL"} <= parts.keys():
            version = f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCHLEVEL']}"
            return {"version": version, "where": path}
    return None


class Cudnn(FactBase[CudnnDict | None]):
    """
    Returns the cuDNN version and the header it was read from.

    Reads ``CUDNN_MAJOR``/``MINOR``/``PATCHLEVEL`` from ``cudnn_version.h`` (cuDNN 8 and
    later) or ``cudnn.h`` (cuDNN 7 and earlier) in the toolkit and system include dirs, or in
    the ``nvidia-cudnn-cu*`` pip wheel. Keys: ``version`` (``"9.1.0"``), ``where`` (the header).

    None when no cuDNN header is found.

    **Example:**

    .. code:: python

        cudnn = host.get_fact(Cudnn)
    """

    @override
    def command(self) -> str:
        globs = " ".join(h.replace("$HOME", '"$HOME"') for h in CUDNN_HEADERS)
        return (
            f"for f in {globs}; do "
            '[ -f "$f" ] && LC_ALL=C grep -H -E '
            "'^#define CUDNN_(MAJOR|MINOR|PATCHLEVEL)[[:space:]]+[0-9]+[[:space:]]*$' \"$f\"; "
            "done; true"
        )

    @override
    def process(self, output: list[str]) -> CudnnDict | None:
        return parse_cudnn(output)
