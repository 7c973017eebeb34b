"""Preflight: check every dlrig data key, gather facts, resolve the plan, fail before any change.

Every entry deploy runs ``preflight()`` first. Every component gets the plan with
``plan_for(host)`` (computed once per host and cached): ``plan.compiler.cxx``,
``plan.python.target``, ``plan.boost.prefix``, ``plan.gencode``, ``plan.cudnn.include``,
``plan.torch.index_url``, … — see ``deploys/lib/plan.py`` (``Plan``) and README ("The plan").
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pyinfra import host, logger
from pyinfra.api import DeployError, deploy

from deploys.lib import compat, data

PREFIX = "preflight_"

DEFAULTS: dict[str, Any] = {
    "preflight_cpu_only": False,
    "preflight_cuda_toolkit": "",
    "preflight_cuda_arch": [],
    "preflight_require_gpu": True,
    "preflight_torch_version": "",
    "preflight_tensorflow_version": "",
    "preflight_python": "python3",
}

DOCS: dict[str, str] = {
    "preflight_cpu_only": "Force CPU_ONLY builds and CPU wheels even where a GPU and CUDA exist.",
    "preflight_cuda_toolkit": (
        "CUDA toolkit to build with: a version prefix ('12.4') or its path; empty: the default "
        "toolkit (/usr/local/cuda), else the newest found."
    ),
    "preflight_cuda_arch": (
        "Compute capabilities to build for (['7.5', '8.6'] or 'sm_86'); empty: those of the GPUs "
        "found. SASS for each, PTX for the newest."
    ),
    "preflight_require_gpu": (
        "Without an NVIDIA GPU, build CPU_ONLY even when a toolkit exists; false builds CUDA "
        "code anyway (for preflight_cuda_arch, or nvcc's default arch)."
    ),
    "preflight_torch_version": (
        "PyTorch release (major.minor) the wheel variant is picked for; empty: the newest the "
        "driver and Python run."
    ),
    "preflight_tensorflow_version": (
        "TensorFlow release (major.minor); empty: the newest the driver and Python run "
        "(tensorflow[and-cuda] from 2.14)."
    ),
    "preflight_python": (
        "The Python the stack is for (a name on PATH or a path; on @local a controller venv is "
        "seen through to its base): pip_stack_venv is made from it, and its target (the venv's "
        "python, or itself) gets Boost.Python, pycaffe, the pip stack, the speed check and the "
        "local runtime's kernel."
    ),
}

# Where preflight also writes each host's plan as JSON, on the controller (for reviews, CI).
PLAN_DIR_ENV = "DLRIG_PLAN_DIR"

# One plan per host and pyinfra state: deploy code runs before any operation executes, so the
# plan rests on facts as they were before this run changed anything.
_PLANS: dict[tuple[int, str], compat.Plan] = {}


def check_all_data(target: Any = host) -> None:
    """Check ALL of a host's dlrig data keys (every deploy's): unknown keys and wrong types.

    + target: the pyinfra host (default: the current one)
    """
    try:
        data.check(target.data.dict(), data.known_keys())
        compat.Options.from_data(target.data.dict())
    except (data.DataError, compat.CompatError) as e:
        raise DeployError(f"{target.name}: {e}") from None


def gather_facts(target: Any = host) -> compat.HostFacts:
    """Read every fact the resolver needs from the host (read-only).

    + target: the pyinfra host
    """
    from facts.batch import get_facts
    from facts.cuda import CudaToolkits, Cudnn
    from facts.gpu import NvidiaDriver, NvidiaGpus
    from facts.platform import ColabRuntime, SystemSummary
    from facts.python import PythonEnv
    from facts.toolchain import HostCompilers

    python = target.data.get("preflight_python") or DEFAULTS["preflight_python"]
    # One round trip for all of them (facts.batch): on a fleet, round trips are the cost.
    gpus, driver, toolkits, cudnn, compilers, python_env, colab, system = get_facts(
        target,
        [
            (NvidiaGpus, {}),
            (NvidiaDriver, {}),
            (CudaToolkits, {}),
            (Cudnn, {}),
            (HostCompilers, {}),
            (PythonEnv, {"python": python}),
            (ColabRuntime, {}),
            (SystemSummary, {}),
        ],
    )
    return compat.HostFacts(
        gpus=gpus or [],
        driver=driver,
        toolkits=toolkits or [],
        cudnn=cudnn,
        compilers=compilers or {},
        python=python_env,
        colab=colab,
        system=system,
    )


def plan_for(target: Any = host) -> compat.Plan:
    """The resolved plan for a host, computed once (data checked, facts read, rules applied).

    + target: the pyinfra host (default: the current one)

    Raises ``DeployError`` naming the data key to change when the host's data or its
    combination of driver / toolkit / compiler / GPUs cannot work.

    **Example:**

    .. code:: python

        from deploys.preflight import plan_for

        plan = plan_for(host)
        cxx = plan.compiler.cxx  # Boost, Caffe and nvcc -ccbin
        interpreter = plan.python.target  # Boost.Python, pycaffe, the stack
    """
    key = (id(target.state), target.name)
    if key not in _PLANS:
        check_all_data(target)
        options = compat.Options.from_data(target.data.dict())
        try:
            _PLANS[key] = compat.resolve(gather_facts(target), options)
        except compat.CompatError as e:
            lines = "\n  - ".join(e.errors)
            raise DeployError(f"{target.name}: preflight failed:\n  - {lines}") from None
    return _PLANS[key]


@deploy("Preflight: check data and compatibility", data_defaults=DEFAULTS)
def preflight() -> None:
    """
    Check all dlrig host data, read the facts, resolve and print the host's plan.

    Adds no operation and changes nothing on the host (with ``DLRIG_PLAN_DIR`` set, the plan is
    also written to ``$DLRIG_PLAN_DIR/<host>.json`` on the controller): a bad key, a wrong type
    or an impossible combination (driver too old for the toolkit, a GPU the toolkit cannot
    target, no compiler nvcc accepts) raises ``DeployError`` before any other deploy adds an
    operation.

    **Example:**

    .. code:: python

        from deploys.preflight import preflight

        preflight()
    """
    data.check_host_data(host, DEFAULTS)
    plan = plan_for(host)
    for line in plan.summary().splitlines():
        logger.info(f"{host.print_prefix}preflight: {line}")
    out = os.environ.get(PLAN_DIR_ENV)
    if out:
        path = Path(out) / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', host.name).strip('_')}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(plan.to_json() + "\n")
