"""Boost from pinned, verified source with the chosen compiler and Python, or the distro's Boost.

``boost_source: build`` (default) downloads the release archive, checks its sha256 before
anything is extracted, bootstraps b2 with only the libraries Caffe needs, names the compiler and
Python in a ``user-config.jam``, builds with ``b2 -jN`` (at ``nice``) into a staging prefix beside
``boost_prefix``, swaps it in, registers ``<prefix>/lib`` with the dynamic linker and records the
build key last (``deploys/lib/buildkey.py`` explains the key and why a plan stays honest when the
compiler is installed in the same run). The log is ``/var/log/dlrig/boost-build.log``.

``boost_source: system`` installs the distribution's ``libboost-<lib>-dev`` packages instead and
removes this deploy's linker entry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, QuoteString, StringCommand, deploy, operation
from pyinfra.api.operation import OperationMeta

from deploys import apt_packages, build_cache, ldconfig
from deploys.lib import buildkey, data
from deploys.preflight import plan_for
from facts.buildkey import BuildKeyState
from facts.installed import MissingPaths

PREFIX = "boost_"

DEFAULT_VERSION = "1.88.0"

# sha256 of the official release archives (archives.boost.io/release/<v>/source/), as published
# on https://www.boost.org/users/history/version_1_88_0.html.
KNOWN_SHA256: dict[str, str] = {
    "1.88.0": "46d9d2c06637b219270877c9e16155cbd015b6dc84349af064c088e9b5b12f7b",
}

DEFAULTS: dict[str, Any] = {
    "boost_source": "build",
    "boost_version": DEFAULT_VERSION,
    "boost_url": "",
    "boost_sha256": "",
    "boost_libraries": ["system", "filesystem", "regex", "thread", "python"],
    "boost_prefix": "/opt/dlrig/boost",
    "boost_jobs": 0,
    "boost_build_packages": ["g++", "curl", "ca-certificates", "bzip2"],
}

DOCS: dict[str, str] = {
    "boost_source": (
        "build: compile the pinned release with the plan's compiler and interpreter (Caffe then "
        "compiles and links against it: one compiler for both, Boost.Python for the plan's "
        "Python); system: the distribution's libboost-<lib>-dev (right when its Boost.Python "
        "matches the plan's interpreter)."
    ),
    "boost_version": (
        "Boost release to build; 1.88.0 is the newest with the libboost_system stub Caffe "
        "links and a Boost.Python NumPy extension that builds against NumPy 2."
    ),
    "boost_url": (
        "Source archive URL (upstream layout, boost_X_Y_Z/ on top); empty: "
        "https://archives.boost.io/release/<version>/source/boost_<X_Y_Z>.tar.bz2."
    ),
    "boost_sha256": (
        "sha256 of the archive, checked before extraction; empty: the known sum of the "
        "default version's official archive. Required when the version or URL is changed."
    ),
    "boost_libraries": (
        "Compiled Boost libraries to build (b2 --with-<lib>); all headers are installed."
    ),
    "boost_prefix": (
        "Install prefix, owned by this deploy (replaced as a whole on rebuild; its lib/ is "
        "registered with ldconfig); not a shared directory like /usr/local."
    ),
    "boost_jobs": "Parallel b2 jobs; 0: the host's CPU count (nproc).",
    "boost_build_packages": (
        "APT packages installed before building (g++: b2's engine bootstraps with it; curl, "
        "bzip2); the plan's compiler and, for the distribution's interpreter, python3-dev are "
        "added."
    ),
}

B2_OPTIONS = "variant=release link=shared threading=multi runtime-link=shared"
RECIPE = "1"  # bump when files/boost/build.sh changes what it produces
LOG = "/var/log/dlrig/boost-build.log"
BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "files" / "boost" / "build.sh"
KEY_FILE = ".dlrig-build-key.json"

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LIB = re.compile(r"^[a-z][a-z0-9_]*$")
_SHARED_PREFIXES = {"/", "/usr", "/usr/local", "/opt", "/opt/dlrig", "/home", "/root", "/var"}
# Debian/Ubuntu packages for the system alternative, by Boost library name.
_SYSTEM_PACKAGE = {"python": "libboost-python-dev", "numpy": "libboost-numpy-dev"}


def default_url(version: str) -> str:
    """The official release archive of ``version``."""
    return (
        f"https://archives.boost.io/release/{version}/source/"
        f"boost_{version.replace('.', '_')}.tar.bz2"
    )


def resolve_source(version: str, url: str, sha256: str) -> tuple[str, str]:
    """Return (url, sha256) for the data; raise DeployError naming the key when one is wrong."""
    if not _VERSION.match(version):
        raise DeployError(f"boost_version {version!r} must look like 1.88.0")
    url = url or default_url(version)
    if not re.match(r"^(https?|file)://", url):
        raise DeployError(f"boost_url {url!r} must be an http(s) or file URL")
    if not sha256:
        if url != default_url(version) or version not in KNOWN_SHA256:
            raise DeployError(
                "boost_sha256 is required when boost_version or boost_url is changed "
                f"(no known sum for {url})"
            )
        sha256 = KNOWN_SHA256[version]
    if not _SHA256.match(sha256):
        raise DeployError(f"boost_sha256 {sha256!r} must be 64 lower-case hex digits")
    return url, sha256


def check_libraries(libraries: list[str]) -> list[str]:
    """Return the sorted library list; raise DeployError for a bad boost_libraries."""
    if not libraries or not all(isinstance(x, str) and _LIB.match(x) for x in libraries):
        raise DeployError(f"boost_libraries {libraries!r} must be a non-empty list of names")
    return sorted(set(libraries))


def check_prefix(prefix: str) -> str:
    """Return the normalised prefix; raise DeployError for a relative or shared directory."""
    norm = "/" + prefix.strip("/")
    if not prefix.startswith("/") or norm in _SHARED_PREFIXES or ".." in norm.split("/"):
        raise DeployError(
            f"boost_prefix {prefix!r} must be an absolute directory owned by this deploy "
            "(not /usr, /usr/local, /opt …): it is replaced as a whole on rebuild"
        )
    return norm


def build_spec(
    version: str, sha256: str, libraries: list[str], prefix: str, cxx: str, python: str
) -> dict[str, Any]:
    """The build key spec: declared inputs + the tools the host probes.

    The compiler is always probed; Python (ABI, NumPy major) only when Boost.Python is built,
    so installing NumPy later rebuilds Boost only when it gains ``boost_numpy`` from it.
    """
    probe = {"cxx": cxx, "python": python} if "python" in libraries else {"cxx": cxx}
    return {
        "name": "boost",
        "inputs": {
            "recipe": RECIPE,
            "version": version,
            "sha256": sha256,
            "libraries": libraries,
            "prefix": prefix,
            "b2_options": B2_OPTIONS,
            "cxx": cxx,
            "python": python,
        },
        "probe": probe,
    }


def installed_files(prefix: str, libraries: list[str]) -> list[str]:
    """Files a complete install has: the version header and each non-Python library."""
    libs = [
        f"{prefix}/lib/libboost_{lib}.so" for lib in libraries if lib not in ("python", "numpy")
    ]
    return [f"{prefix}/include/boost/version.hpp", *libs]


def system_packages(libraries: list[str]) -> list[str]:
    """Debian/Ubuntu ``-dev`` packages for the libraries (``libboost-<lib>-dev``)."""
    return [_SYSTEM_PACKAGE.get(lib, f"libboost-{lib.replace('_', '-')}-dev") for lib in libraries]


@operation(is_idempotent=False, idempotent_notice="Builds only when the build key differs.")
def build(
    version: str,
    url: str,
    sha256: str,
    libraries: list[str],
    prefix: str,
    cxx: str = "g++",
    python: str = "python3",
    jobs: int = 0,
):
    """
    Build and install Boost from a verified source archive, unless the same build is recorded.

    + version: Boost release, e.g. ``1.88.0`` (the archive holds ``boost_1_88_0/``)
    + url: source archive URL
    + sha256: the archive's sha256, checked before extraction (a mismatch removes the file)
    + libraries: compiled libraries to build (``b2 --with-<lib>``)
    + prefix: install prefix, owned by this operation (swapped in whole from a staging tree)
    + cxx: C++ compiler; its probed version is part of the build key
    + python: interpreter for Boost.Python; its ABI and NumPy major version are in the key
    + jobs: parallel b2 jobs, 0 for the host's CPU count

    The recorded key (``<prefix>/.dlrig-build-key.json``) is compared with the key the host's
    tools give at plan time; equal → no-op. When a tool is missing at plan time (installed
    later in the same run) the build script re-checks on the host first. Output goes to
    ``/var/log/dlrig/boost-build.log``; on failure its last lines are in the error.

    **Example:**

    .. code:: python

        build(
            version="1.88.0",
            url="https://archives.boost.io/release/1.88.0/source/boost_1_88_0.tar.bz2",
            sha256="46d9d2c06637b219270877c9e16155cbd015b6dc84349af064c088e9b5b12f7b",
            libraries=["filesystem", "system"],
            prefix="/opt/dlrig/boost",
        )
    """
    spec = build_spec(version, sha256, libraries, prefix, cxx, python)
    key_file = f"{prefix}/{KEY_FILE}"
    state = host.get_fact(BuildKeyState, spec=spec, path=key_file)
    recorded, wanted = state["recorded"], state["expected"]
    # The key proves the install only while the install is there: a damaged prefix is rebuilt.
    missing = host.get_fact(MissingPaths, paths=installed_files(prefix, libraries))
    if recorded and missing:
        yield StringCommand("rm", "-f", QuoteString(key_file))
    elif wanted is not None and recorded and recorded.get("build_key") == wanted["build_key"]:
        host.noop(f"Boost {version} is built in {prefix} (key {wanted['build_key'][:12]})")
        return
    yield StringCommand(
        "nice",
        "-n",
        "10",
        "bash",
        "-c",
        buildkey.shipped(BUILD_SCRIPT.read_text()),
        "boost-build",
        QuoteString(version),
        QuoteString(url),
        QuoteString(sha256),
        QuoteString(",".join(libraries)),
        QuoteString(prefix),
        QuoteString(cxx),
        QuoteString(python),
        QuoteString(str(int(jobs))),
        QuoteString(B2_OPTIONS),
        QuoteString(json.dumps(spec, sort_keys=True)),
        buildkey.shipped(buildkey.host_program()),
        QuoteString(LOG),
        *build_cache.tool_args(),
    )


@deploy("Install Boost", data_defaults=DEFAULTS)
def boost() -> list[OperationMeta]:
    """
    Install Boost: built from pinned, verified source (default) or the distro's packages.

    Data keys (see README): ``boost_source``, ``boost_version``, ``boost_url``,
    ``boost_sha256``, ``boost_libraries``, ``boost_prefix``, ``boost_jobs``,
    ``boost_build_packages``. The compiler and the interpreter are the preflight plan's
    (``plan.compiler.cxx``, ``plan.python.target``), like Caffe's. A second run with the same
    inputs changes nothing; a changed input (compiler version included) rebuilds. Returns the
    build operation (the speed check reruns when it changed something).

    **Example:**

    .. code:: python

        from deploys.boost import boost

        boost()
    """
    data.check_host_data(host, DEFAULTS)
    d = host.data
    plan = plan_for(host)
    libraries = check_libraries(d.boost_libraries)
    if plan.boost.source == "system":
        apt_packages.present(
            name="Install the distribution's Boost development packages",
            packages=system_packages(libraries),
            cache_time=3600,
        )
        ldconfig.register(owner="boost", wanted={})
        return []
    url, sha256 = resolve_source(d.boost_version, d.boost_url, d.boost_sha256)
    prefix = check_prefix(plan.boost.prefix or d.boost_prefix)
    if d.boost_jobs < 0:
        raise DeployError(f"boost_jobs {d.boost_jobs!r} must be 0 (CPU count) or more")
    python = plan.python
    assert python is not None  # preflight fails without an interpreter
    # The plan's compiler too (the toolchain deploy installs it as well; Boost alone needs it).
    packages = [*d.boost_build_packages, *plan.compiler.packages]
    if "python" in libraries and python.system:
        packages.append("python3-dev")
    if packages:
        apt_packages.present(
            name="Install Boost build prerequisites",
            packages=packages,
            cache_time=3600,
            no_recommends=True,
        )
    build_cache.install_tool()
    name = f"Build Boost {d.boost_version} ({', '.join(libraries)})"
    inputs = {
        "version": d.boost_version,
        "url": url,
        "sha256": sha256,
        "libraries": libraries,
        "prefix": prefix,
        "cxx": plan.compiler.cxx,
        "python": python.target,
        "jobs": d.boost_jobs,
    }
    # With a shared cache one host builds first (an earlier operation: pyinfra runs it before
    # the next one starts anywhere); the others' build then restores what it published.
    if build_cache.builds_first():
        op = build(name=f"{name} first, for the shared build cache", **inputs)
    else:
        op = build(name=name, **inputs)
    ldconfig.register(owner="boost", wanted={"lib": [f"{prefix}/lib"]})
    return [op]
