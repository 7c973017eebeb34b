"""Facts for the Caffe build: compiler, nvcc, cuDNN, Boost, Python and OS, in one round trip."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

# Arguments: python, cxx, cuda_dir, cudnn_dir. Every line is "key=value"; "python=" is JSON.
_SCRIPT = r"""
py=$1; cxx=$2; cuda=$3; cudnn=$4
echo "os=$( (. /etc/os-release && echo "$ID-$VERSION_ID") 2>/dev/null)"
echo "cxx_version=$("$cxx" -dumpfullversion 2>/dev/null)"
echo "multiarch=$("$cxx" -print-multiarch 2>/dev/null)"
echo "nvcc=$("$cuda/bin/nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
h=
for d in "$cudnn/include" "$cuda/include" /usr/include /usr/include/*-linux-gnu; do
  if [ -n "$d" ] && [ -f "$d/cudnn_version.h" ]; then h="$d/cudnn_version.h"; break; fi
done
if [ -n "$h" ]; then
  echo "cudnn=$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{printf "%s%s", s, $3; s="."}' "$h")"
else
  echo "cudnn="
fi
echo "boost=$(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' /usr/include/boost/version.hpp \
  2>/dev/null)"
echo "python=$("$py" -c '
import json, sys, sysconfig
try:
    import numpy
    np_inc, np_ver = numpy.get_include(), numpy.__version__
except Exception:
    np_inc, np_ver = None, None
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "include": sysconfig.get_paths()["include"],
    "libdir": sysconfig.get_config_var("LIBDIR"),
    "purelib": sysconfig.get_paths()["purelib"],
    "numpy_include": np_inc,
    "numpy": np_ver,
}))' 2>/dev/null)"
"""


class BuildInputs(TypedDict):
    os: str
    cxx_version: str | None
    multiarch: str | None
    nvcc: str | None
    cudnn: str | None
    boost: str | None
    python: dict[str, Any] | None


def parse_build_inputs(output: list[str]) -> BuildInputs:
    """Parse the fact's ``key=value`` lines; empty values become None."""
    values: dict[str, Any] = {}
    for line in output:
        key, sep, value = line.partition("=")
        if not sep:
            continue
        values[key.strip()] = value.strip() or None
    if "os" not in values:
        raise FactProcessError(f"unexpected build inputs output: {output!r}")
    if values.get("python"):
        try:
            values["python"] = json.loads(values["python"])
        except json.JSONDecodeError as e:
            raise FactProcessError(f"bad python info: {values['python']!r}") from e
    return BuildInputs(
        os=values.get("os") or "unknown",
        cxx_version=values.get("cxx_version"),
        multiarch=values.get("multiarch"),
        nvcc=values.get("nvcc"),
        cudnn=values.get("cudnn"),
        boost=values.get("boost"),
        python=values.get("python"),
    )


class CaffeBuildInputs(FactBase[BuildInputs]):
    """
    Returns what a Caffe build depends on: OS, compiler, nvcc, cuDNN, Boost, Python + NumPy.

    + python: the interpreter pycaffe is built for (its version, include dir, site-packages
      and NumPy headers)
    + cxx: the host compiler (``g++``, ``g++-11``)
    + cuda_dir: the CUDA toolkit root (``bin/nvcc`` inside it)
    + cudnn_dir: an extra cuDNN root searched first for ``include/cudnn_version.h``

    Missing pieces are None (no nvcc, no NumPy yet). Example output::

        {"os": "debian-12", "cxx_version": "12.2.0", "multiarch": "x86_64-linux-gnu",
         "nvcc": None, "cudnn": None, "boost": "1_74",
         "python": {"version": "3.11", "include": "/usr/include/python3.11", ...}}

    **Example:**

    .. code:: python

        host.get_fact(CaffeBuildInputs, python="python3", cxx="g++",
                      cuda_dir="/usr/local/cuda", cudnn_dir="")
    """

    @override
    def command(self, python: str, cxx: str, cuda_dir: str, cudnn_dir: str) -> StringCommand:
        return StringCommand(
            "LC_ALL=C sh -c",
            QuoteString(_SCRIPT),
            "caffe-build-inputs",
            QuoteString(python),
            QuoteString(cxx),
            QuoteString(cuda_dir),
            QuoteString(cudnn_dir),
        )

    @override
    def default(self) -> BuildInputs:
        # No output at all (e.g. pyinfra's @fake connector): nothing is known about the host.
        return BuildInputs(
            os="", cxx_version=None, multiarch=None, nvcc=None, cudnn=None, boost=None, python=None
        )

    @override
    def process(self, output: list[str]) -> BuildInputs:
        return parse_build_inputs(output)
