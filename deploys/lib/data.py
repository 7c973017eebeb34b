"""Host data checks shared by every packaged deploy.

Each deploy module declares ``DEFAULTS`` (its prefixed data keys and their defaults) and lists
itself in ``DEPLOY_MODULES``. ``check_host_data`` runs at the top of every deploy, before any
operation is added, so a mistyped key or a value of the wrong type stops the run before anything
on the host changes.
"""

from __future__ import annotations

import ast
import difflib
import importlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

DEPLOYS_DIR = Path(__file__).resolve().parents[1]

# Data keys that pyinfra itself (or its connectors) reads: never reported as unknown.
_PYINFRA_PREFIXES = ("ssh_", "chroot_", "docker_", "local_", "winrm_", "vagrant_", "_")


class DataError(ValueError):
    """A host data value that dlrig cannot accept."""


@cache
def deploy_modules() -> tuple[str, ...]:
    """Packaged deploy modules: those under deploys/ with a top-level ``PREFIX`` assignment.

    Found by parsing, not importing: entry scripts (``deploys/colab.py``) add operations when
    imported, so they must never be imported here.
    """
    names = []
    for path in sorted(DEPLOYS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if any(isinstance(t, ast.Name) and t.id == "PREFIX" for t in targets):
                names.append(f"deploys.{path.stem}")
                break
    return tuple(names)


@cache
def _all_defaults() -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple(
        (module.PREFIX, module.DEFAULTS)
        for module in (importlib.import_module(name) for name in deploy_modules())
    )


def all_defaults() -> dict[str, dict[str, Any]]:
    """Map each packaged deploy's key prefix to its DEFAULTS (modules imported once per run)."""
    return dict(_all_defaults())


def all_docs() -> dict[str, str]:
    """Every data key's one-line description (each deploy module's ``DOCS``)."""
    docs: dict[str, str] = {}
    for name in deploy_modules():
        docs.update(importlib.import_module(name).DOCS)
    return docs


@cache
def _known_keys() -> tuple[tuple[str, Any], ...]:
    keys: dict[str, Any] = {}
    for _, defaults in _all_defaults():
        keys.update(defaults)
    return tuple(keys.items())


def known_keys() -> dict[str, Any]:
    """Every data key dlrig knows, with its default."""
    return dict(_known_keys())


# Keys that are gone because the preflight plan resolves what they chose (README: "The plan").
_INTERPRETER = "the plan's interpreter: set preflight_python / pip_stack_venv"
REMOVED: dict[str, str] = {
    "pip_stack_python": _INTERPRETER,
    "boost_python": _INTERPRETER,
    "caffe_python": _INTERPRETER,
    "speed_check_python": _INTERPRETER,
    "local_runtime_python": _INTERPRETER,
    "datasets_python": _INTERPRETER,
    "boost_cxx": "the plan's compiler: set toolchain_gcc",
    "caffe_cxx": "the plan's compiler: set toolchain_gcc",
    "caffe_cpu_only": "the plan's mode: set preflight_cpu_only",
    "caffe_cuda_dir": "the plan's toolkit: set preflight_cuda_toolkit",
    "caffe_cuda_arch": "the plan's arches: set preflight_cuda_arch",
    "caffe_cudnn": "the plan's cuDNN (used when usable with the plan's CUDA)",
    "caffe_cudnn_dir": "the plan's cuDNN root (found by the Cudnn fact)",
}


def _closest(key: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
    return matches[0] if matches else None


def unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """Return one error line per host data key that looks like dlrig's but is not known.

    A key is dlrig's when it starts with a deploy's prefix, or when it is a near miss of a known
    key (``boost_verison``, ``bost_version``). pyinfra's own keys and unrelated user keys pass.
    """
    known = known_keys()
    prefixes = tuple(all_defaults())
    errors = []
    for key in sorted(data):
        if key in REMOVED:
            errors.append(f"data key {key!r} was removed: {REMOVED[key]}")
            continue
        ours = key.startswith(prefixes)  # local_runtime_* is dlrig's, local_* pyinfra's
        if key in known or (key.startswith(_PYINFRA_PREFIXES) and not ours):
            continue
        near = _closest(key, list(known))
        if ours or near:
            hint = f"; did you mean {near!r}?" if near else ""
            errors.append(f"unknown data key {key!r}{hint}")
    return errors


def _type_name(value: Any) -> str:
    return type(value).__name__


def type_errors(data: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[str]:
    """Return one error line per key whose value's type differs from its default's type.

    Defaults of ``None`` accept any value. ``int`` is accepted where a ``float`` is expected;
    ``bool`` is never accepted for ``int`` (and the other way round).
    """
    errors = []
    for key, default in defaults.items():
        if key not in data or default is None:
            continue
        value = data[key]
        if value is None:
            continue
        expected = type(default)
        ok = isinstance(value, expected)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if expected is int and isinstance(value, bool):
            ok = False
        if not ok:
            errors.append(
                f"data key {key!r} must be {expected.__name__}, got {_type_name(value)} {value!r}"
            )
    return errors


def check(data: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Raise ``DataError`` listing every unknown key and wrong type in ``data``."""
    errors = unknown_keys(data) + type_errors(data, defaults)
    if errors:
        raise DataError("invalid host data: " + "; ".join(errors))


def check_host_data(host: Any, defaults: Mapping[str, Any]) -> None:
    """Check the current host's data for a deploy; raise pyinfra's ``DeployError`` on bad data.

    + host: the pyinfra host (``pyinfra.host``)
    + defaults: the calling deploy's DEFAULTS
    """
    from pyinfra.api.exceptions import DeployError

    try:
        check(host.data.dict(), defaults)
    except DataError as e:
        raise DeployError(f"{host.name}: {e}") from None
