"""Facts for the Caffe build: compiler, nvcc, cuDNN, Boost, Python and OS, in one round trip."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

# Arguments: python, cxx, cuda_dir, cudnn_include, boost_prefix. Every line is "key=value";
# "python=" is JSON.
_SCRIPT = r"""
py=$1; cxx=$2; cuda=$3; cudnn=$4; boost=$5
echo "os=$( (. /etc/os-release && echo "$ID-$VERSION_ID") 2>/dev/null)"
echo "cxx_version=$("$cxx" -dumpfullversion 2>/dev/null)"
echo "multiarch=$("$cxx" -print-multiarch 2>/dev/null)"
if [ -n "$cuda" ]; then
  echo "nvcc=$("$cuda/bin/nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
else
  echo "nvcc="
fi
h=
for d in "$cudnn" "$cuda/include" /usr/include /usr/include/*-linux-gnu; do
  if [ -n "$d" ] && [ -f "$d/cudnn_version.h" ]; then h="$d/cudnn_version.h"; break; fi
done
if [ -n "$h" ]; then
  echo "cudnn=$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{printf "%s%s", s, $3; s="."}' "$h")"
else
  echo "cudnn="
fi
inc=/usr/include
[ -z "$boost" ] || inc="$boost/include"
echo "boost=$(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' "$inc/boost/version.hpp" \
  2>/dev/null)"
if [ -n "$boost" ]; then
  echo "boost_key=$(sed -n 's/^ *"build_key": *"\([0-9a-f]*\)".*/\1/p' \
    "$boost/.dlrig-build-key.json" 2>/dev/null)"
else
  echo "boost_key="
fi
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
    boost_key: str | None
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
        boost_key=values.get("boost_key"),
        python=values.get("python"),
    )


class CaffeBuildInputs(FactBase[BuildInputs]):
    """
    Returns what a Caffe build depends on: OS, compiler, nvcc, cuDNN, Boost, Python + NumPy.

    + python: the interpreter pycaffe is built for (its version, include dir, site-packages
      and NumPy headers)
    + cxx: the host compiler (``g++``, ``/usr/bin/g++-11``)
    + cuda_dir: the CUDA toolkit root (``bin/nvcc`` inside it); empty for none
    + cudnn_dir: an extra cuDNN include dir searched first for ``cudnn_version.h``
    + boost_prefix: dlrig's Boost prefix (its ``include/boost/version.hpp`` and build key);
      empty for the distribution's Boost in ``/usr/include``

    Missing pieces are None (no nvcc, no NumPy yet). Example output::

        {"os": "debian-12", "cxx_version": "12.2.0", "multiarch": "x86_64-linux-gnu",
         "nvcc": None, "cudnn": None, "boost": "1_88", "boost_key": "3f1c…",
         "python": {"version": "3.11", "include": "/usr/include/python3.11", ...}}

    **Example:**

    .. code:: python

        host.get_fact(CaffeBuildInputs, python="/opt/dlrig/venv/bin/python",
                      cxx="/usr/bin/g++-12", cuda_dir="", cudnn_dir="",
                      boost_prefix="/opt/dlrig/boost")
    """

    @override
    def command(
        self, python: str, cxx: str, cuda_dir: str, cudnn_dir: str, boost_prefix: str = ""
    ) -> StringCommand:
        return StringCommand(
            "LC_ALL=C sh -c",
            QuoteString(_SCRIPT),
            "caffe-build-inputs",
            QuoteString(python),
            QuoteString(cxx),
            QuoteString(cuda_dir),
            QuoteString(cudnn_dir),
            QuoteString(boost_prefix),
        )

    @override
    def default(self) -> BuildInputs:
        # No output at all (e.g. pyinfra's @fake connector): nothing is known about the host.
        return BuildInputs(
            os="",
            cxx_version=None,
            multiarch=None,
            nvcc=None,
            cudnn=None,
            boost=None,
            boost_key=None,
            python=None,
        )

    @override
    def process(self, output: list[str]) -> BuildInputs:
        return parse_build_inputs(output)
