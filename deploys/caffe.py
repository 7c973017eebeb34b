"""Caffe-SSD (weiliu89/caffe, branch ssd) from source, patched for today's toolchains.

CPU_ONLY or CUDA, pycaffe for a Python 3 interpreter, ``make distribute`` into a prefix
registered with the dynamic linker, ``import caffe`` through a ``.pth`` file. The build is
gated by a build key recorded as the very last step.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, QuoteString, StringCommand, deploy, operation
from pyinfra.api.operation import OperationMeta
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, pip

from deploys import apt_packages, boost, build_cache, ldconfig
from deploys.lib import caffe as lib
from deploys.lib import caffe_scripts as scripts
from deploys.lib import data
from deploys.preflight import plan_for
from facts.caffe import CaffeBuildInputs
from facts.installed import MissingPaths

PREFIX = "caffe_"

FORK_URL = "https://github.com/weiliu89/caffe.git"
FORK_COMMIT = "4817bf8b4200b35ada8ed0dc378dceaf38c539e4"

DEFAULTS: dict[str, Any] = {
    "caffe_repo": FORK_URL,
    "caffe_ref": FORK_COMMIT,
    "caffe_src_dir": "/opt/dlrig/src/caffe",
    "caffe_prefix": "/opt/dlrig/caffe",
    "caffe_blas": "open",
    "caffe_jobs": 0,
    "caffe_run_tests": False,
}

DOCS: dict[str, str] = {
    "caffe_repo": "Git URL of the Caffe source (the SSD fork; a file:// URL works for mirrors).",
    "caffe_ref": "Commit to build (pinned: the head of branch ssd since 2018); in the build key.",
    "caffe_src_dir": "Where the source is cloned; objects go to <src_dir>-build (out of place).",
    "caffe_prefix": (
        "Where `make distribute` output is installed (bin, lib, include, python); the build key "
        "is recorded inside it (.dlrig-build-key.json), so a removed prefix is rebuilt."
    ),
    "caffe_blas": "BLAS: open (OpenBLAS), atlas or mkl (MKL must already be installed).",
    "caffe_jobs": "Parallel make jobs; 0 = the host's CPU count.",
    "caffe_run_tests": "Also build and run `make test runtest` (long; off by default).",
}

STATE_DIR = "/var/lib/dlrig/caffe"
KEY_NAME = ".dlrig-build-key.json"  # inside the prefix: no prefix, no key
# What an install must hold for its recorded key to count (a damaged install is rebuilt).
INSTALLED_FILES = ("lib/libcaffe.so", "python/caffe/_caffe.so", "bin/caffe.bin")
PATCH_REMOTE_DIR = f"{STATE_DIR}/patches"
LOG_FILE = "/var/log/dlrig/caffe-build.log"
PTH_NAME = "dlrig-caffe.pth"
RESTORED_FILE = f"{STATE_DIR}/restored-from-cache"
CONFIG_REMOTE = f"{STATE_DIR}/Makefile.config"


def _check_data() -> dict[str, Any]:
    d = {k: host.data.get(k) for k in DEFAULTS}
    if d["caffe_blas"] not in lib.BLAS_CHOICES:
        raise DeployError(f"{host.name}: caffe_blas must be one of {lib.BLAS_CHOICES}")
    for key in ("caffe_src_dir", "caffe_prefix"):
        if not str(d[key]).startswith("/") or str(d[key]).rstrip("/") == "":
            raise DeployError(f"{host.name}: {key} must be an absolute path, got {d[key]!r}")
    if not d["caffe_ref"] or not d["caffe_repo"]:
        raise DeployError(f"{host.name}: caffe_repo and caffe_ref must not be empty")
    if d["caffe_jobs"] < 0:
        raise DeployError(f"{host.name}: caffe_jobs must be >= 0")
    return d


def _paths(d: dict[str, Any]) -> tuple[str, str, str]:
    src = d["caffe_src_dir"].rstrip("/")
    return src, f"{src}-build", f"{src}-stage"


def key_file(d: dict[str, Any]) -> str:
    """The recorded build key: ``<caffe_prefix>/.dlrig-build-key.json``.

    + d: the checked ``caffe_*`` host data
    """
    return f"{d['caffe_prefix'].rstrip('/')}/{KEY_NAME}"


def _resolve(d: dict[str, Any]) -> tuple[lib.Settings, str, dict[str, Any], dict[str, Any]]:
    """Read the build inputs now; return settings, Makefile.config, key parts, inputs."""
    _, build_dir, stage = _paths(d)
    plan = plan_for(host)
    inputs = host.get_fact(
        CaffeBuildInputs,
        python=plan.python.target,  # type: ignore[union-attr]  # preflight requires one
        cxx=plan.compiler.cxx,
        cuda_dir=plan.cuda.path if plan.cuda and not plan.cpu_only else "",
        cudnn_dir=(plan.cudnn.include or "") if plan.cudnn else "",
        boost_prefix=plan.boost.prefix or "",
    )
    try:
        settings = lib.resolve(plan, d["caffe_blas"], dict(inputs), build_dir, stage)
    except ValueError as e:
        raise DeployError(f"{host.name}: {e}") from None
    config = lib.render_makefile_config(settings)
    py = inputs.get("python") or {}
    parts = {
        "repo": d["caffe_repo"],
        "commit": d["caffe_ref"],
        "patches": lib.patch_set_hash(),
        "makefile_config": lib.build_key({"text": config}),
        "compiler": f"{settings.cxx} {inputs.get('cxx_version')}",
        "cuda": None if settings.cpu_only else inputs.get("nvcc"),
        "cudnn": inputs.get("cudnn") if settings.cudnn else None,
        "boost": inputs.get("boost"),
        # dlrig's Boost build key: a Boost rebuild rebuilds Caffe.
        "boost_build": inputs.get("boost_key"),
        "python": py.get("version"),
        "numpy": py.get("numpy"),
        "os": inputs.get("os"),
        "prefix": d["caffe_prefix"],
        "run_tests": d["caffe_run_tests"],
    }
    return settings, config, parts, dict(inputs)


def _recorded_key(d: dict[str, Any]) -> str | None:
    """The recorded key, when the install it describes is complete (else None: rebuild)."""
    prefix = d["caffe_prefix"].rstrip("/")
    if host.get_fact(MissingPaths, paths=[f"{prefix}/{f}" for f in INSTALLED_FILES]):
        return None
    lines = host.get_fact(FileContents, path=key_file(d))
    if not lines:
        return None
    try:
        return json.loads("\n".join(lines)).get("key")
    except (json.JSONDecodeError, AttributeError):
        return None


@operation()
def build(settings_data: dict[str, Any]):
    """
    Restore Caffe from the build cache, or fetch, patch, configure, build and install it.

    The build key (commit, patch set, Makefile.config, compiler, CUDA/cuDNN, Boost, Python,
    NumPy, OS) is compared with the one recorded by ``record_build_key``; the same key is a
    no-op. Otherwise the recorded key is removed first (so an interrupted build is never
    "done"); then the build cache (``build_cache_*`` data) is asked for this key's artifact: a
    hit is swapped into the prefix and nothing is compiled. On a miss the tree is checked out
    clean, patched, configured and built from scratch, and the installed prefix is published
    to the cache.

    + settings_data: the checked ``caffe_*`` host data

    **Example:**

    .. code:: python

        build(settings_data={k: host.data.get(k) for k in DEFAULTS})
    """
    d = settings_data
    settings, config, parts, _ = _resolve(d)
    key = lib.build_key(parts)
    if _recorded_key(d) == key:
        host.noop(f"Caffe build key {key[:12]} is recorded; nothing to build")
        return
    src, build_dir, stage = _paths(d)
    prefix = d["caffe_prefix"].rstrip("/")
    cache_dir, cache_url, publish = build_cache.tool_args()
    python = QuoteString(plan_for(host).python.base)  # type: ignore[union-attr]
    tool = QuoteString(build_cache.TOOL)
    marker = QuoteString(RESTORED_FILE)

    def unless_restored(*args: Any) -> StringCommand:
        return StringCommand("sh", "-c", QuoteString(scripts.UNLESS_RESTORED), marker, *args)

    yield StringCommand("rm", "-f", QuoteString(key_file(d)))
    yield StringCommand("mkdir", "-p", QuoteString(PATCH_REMOTE_DIR))
    yield StringCommand(
        "sh",
        "-c",
        QuoteString(scripts.RESTORE),
        "restore",
        python,
        tool,
        cache_dir,
        cache_url,
        QuoteString(key),
        QuoteString(prefix),
        marker,
        QuoteString(LOG_FILE),
    )
    yield unless_restored(
        "sh",
        "-c",
        QuoteString(scripts.CHECKOUT),
        "checkout",
        QuoteString(d["caffe_repo"]),
        QuoteString(d["caffe_ref"]),
        QuoteString(src),
    )
    remote_patches = []
    for patch in lib.patch_files():
        remote = f"{PATCH_REMOTE_DIR}/{patch.name}"
        remote_patches.append(remote)
        yield from files.put._inner(src=str(patch), dest=remote, mode="644")
    yield unless_restored(
        "sh",
        "-c",
        QuoteString(scripts.APPLY_PATCHES),
        "apply-patches",
        QuoteString(src),
        *[QuoteString(p) for p in remote_patches],
    )
    yield from files.put._inner(src=io.StringIO(config), dest=CONFIG_REMOTE, mode="644")
    yield unless_restored("cp", QuoteString(CONFIG_REMOTE), QuoteString(f"{src}/Makefile.config"))
    yield unless_restored("rm", "-rf", QuoteString(build_dir), QuoteString(stage))
    cudnn = plan_for(host).cudnn
    if settings.cudnn and cudnn and cudnn.wheel and cudnn.lib:
        yield unless_restored(
            "sh",
            "-c",
            QuoteString(scripts.CUDNN_LINK),
            "cudnn-link",
            QuoteString(cudnn.lib.removesuffix("/lib")),
            QuoteString(lib.links_dir(build_dir)),
        )
    make = ["sh", "-c", QuoteString(scripts.MAKE), "make", QuoteString(src), QuoteString(LOG_FILE)]
    jobs = str(d["caffe_jobs"])
    yield unless_restored(*make, jobs, "all", "pycaffe")
    if d["caffe_run_tests"]:
        yield unless_restored(*make, jobs, "test")
        yield unless_restored(*make, "1", "runtest")
    yield unless_restored(*make, jobs, "distribute")
    yield unless_restored(
        "sh",
        "-c",
        QuoteString(scripts.INSTALL_PREFIX),
        "install-prefix",
        QuoteString(stage),
        QuoteString(prefix),
    )
    yield unless_restored(
        "sh",
        "-c",
        QuoteString(scripts.PUBLISH),
        "publish",
        python,
        tool,
        cache_dir,
        publish,
        QuoteString(key),
        QuoteString(prefix),
        QuoteString(json.dumps(parts, sort_keys=True)),
    )
    # The dynamic linker's cache: a restored or rebuilt prefix's libcaffe may be missing from it
    # (an ldconfig run while the prefix was gone, e.g. Boost's, dropped it), and the ldconfig
    # entry itself may not change.
    yield StringCommand("ldconfig")


@operation()
def python_path(settings_data: dict[str, Any]):
    """
    Make ``import caffe`` work in the plan's interpreter with a ``.pth`` file in its
    site-packages (the venv's, on servers).

    + settings_data: the checked ``caffe_*`` host data

    **Example:**

    .. code:: python

        python_path(settings_data={k: host.data.get(k) for k in DEFAULTS})
    """
    _, _, _, inputs = _resolve(settings_data)
    py = inputs.get("python") or {}
    purelib = py.get("purelib")
    if not purelib:
        host.noop(f"{plan_for(host).python.target} not found yet (dry run)")  # type: ignore
        return
    line = f"{settings_data['caffe_prefix'].rstrip('/')}/python\n"
    yield from files.directory._inner(path=purelib, present=True)
    yield from files.put._inner(src=io.StringIO(line), dest=f"{purelib}/{PTH_NAME}", mode="644")


@operation()
def record_build_key(settings_data: dict[str, Any]):
    """
    Record the Caffe build key: the very last step, after build, ldconfig and ``.pth``.

    + settings_data: the checked ``caffe_*`` host data

    **Example:**

    .. code:: python

        record_build_key(settings_data={k: host.data.get(k) for k in DEFAULTS})
    """
    _, _, parts, _ = _resolve(settings_data)
    record = lib.key_record(parts)
    if _recorded_key(settings_data) == lib.build_key(parts):
        host.noop("Caffe build key already recorded")
        return
    yield StringCommand("mkdir", "-p", QuoteString(STATE_DIR))
    yield from files.put._inner(src=io.StringIO(record), dest=key_file(settings_data), mode="644")


@deploy("Build Caffe-SSD from source", data_defaults=DEFAULTS)
def caffe() -> list[OperationMeta]:
    """
    Build Caffe-SSD from source (patched for today's toolchains) with pycaffe for Python 3.

    Data keys (see README): ``caffe_repo``, ``caffe_ref``, ``caffe_src_dir``,
    ``caffe_prefix``, ``caffe_blas``, ``caffe_jobs``, ``caffe_run_tests`` (and
    ``build_cache_*``). Everything else is the preflight plan's: CPU_ONLY or CUDA, the
    compiler (``CUSTOM_CXX``, ``nvcc -ccbin``), CUDA root, arches, cuDNN root, the interpreter
    pycaffe is built for and imported in, and Boost (dlrig's prefix, or the distribution's).
    Steps: apt build dependencies and pycaffe's Python modules; restore from the build cache or
    build (only when the build key changed; log in ``/var/log/dlrig/caffe-build.log``);
    ``<prefix>/lib`` registered with ldconfig; a ``.pth`` file in the interpreter's
    site-packages; the build key recorded last, inside the prefix. Returns the build
    operation (the speed check reruns when it changed something).

    **Example:**

    .. code:: python

        from deploys.caffe import caffe

        caffe()
    """
    data.check_host_data(host, DEFAULTS)
    d = _check_data()
    plan = plan_for(host)
    python = plan.python
    assert python is not None  # preflight fails without an interpreter
    apt_python = python.system and python.venv is None
    packages = [*lib.apt_packages(d["caffe_blas"], apt_python), *plan.compiler.packages]
    if plan.boost.source == "system":
        libraries = host.data.get("boost_libraries") or boost.DEFAULTS["boost_libraries"]
        packages += boost.system_packages(boost.check_libraries(libraries))
    apt_packages.present(
        name="Install Caffe build dependencies",
        packages=packages,
        no_recommends=True,
        cache_time=24 * 3600,
    )
    if not apt_python:
        pip.packages(
            name=f"Install pycaffe's Python modules into {python.target}",
            packages=lib.PIP_PYTHON,
            pip=f"{python.target} -m pip",
            extra_install_args="--disable-pip-version-check --no-input",
        )
    build_cache.install_tool()
    # With a shared cache one host builds first (see deploys/boost.py).
    if build_cache.builds_first():
        op = build(
            name="Build and install Caffe (when the build key changed) first, for the shared "
            "build cache",
            settings_data=d,
        )
    else:
        op = build(name="Build and install Caffe (when the build key changed)", settings_data=d)
    wanted = {"lib": [os.path.join(d["caffe_prefix"], "lib")]}
    if plan.cudnn and plan.cudnn.usable and plan.cudnn.lib and not plan.cpu_only:
        wanted["cudnn"] = [plan.cudnn.lib]
    ldconfig.register(owner="caffe", wanted=wanted)
    python_path(name="Make caffe importable (.pth)", settings_data=d)
    record_build_key(name="Record the Caffe build key", settings_data=d)
    return [op]
