"""Python environment fact: interpreter, site-packages, deep-learning framework versions."""

from __future__ import annotations

import json
import shlex
from typing import TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


class TfBuildDict(TypedDict):
    cuda_version: str | None
    cudnn_version: str | None


class PythonEnvDict(TypedDict, total=False):
    python: str
    base_executable: str | None
    version: str
    site_packages: list[str]
    packages: dict[str, str | None]
    tf_build: TfBuildDict | None


# Distribution names per reported package: the first installed one gives the version.
PACKAGES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly"),
    "keras": ("keras",),
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "jax": ("jax",),
    "numpy": ("numpy",),
}

MARKER = "@dlrig-python-env "

# Runs on the host's interpreter (3.8+). Versions come from the *.dist-info / *.egg-info
# metadata on sys.path, first entry wins, as importlib.metadata finds them (importing that
# module alone costs ~30 ms per probe, and preflight probes every host); the result is JSON
# written by ``enc`` (importing json costs another 7 ms: re, enum). TensorFlow's build
# info is read from the generated tensorflow/python/platform/build_info.py without importing
# TensorFlow (seconds, GPU probing, log noise); only if that file is unreadable is TensorFlow
# imported, with its output kept off stdout.
_SCRIPT = r"""
import os, sys
pk = {}
for arg in sys.argv[1:]:
    key, _, names = arg.partition("=")
    pk[key] = names.split(",")
def enc(v):
    if v is None:
        return "null"
    if isinstance(v, str):
        out = []
        for c in v:
            o = ord(c)
            if 32 <= o < 127 and c not in "\"\\":
                out.append(c)
            elif o > 0xFFFF:
                o -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
            else:
                out.append("\\u%04x" % o)
        return '"' + "".join(out) + '"'
    if isinstance(v, dict):
        return "{" + ", ".join(enc(str(k)) + ": " + enc(x) for k, x in v.items()) + "}"
    return "[" + ", ".join(enc(x) for x in v) + "]"
def norm(name):
    return name.lower().replace("_", "-").replace(".", "-")
wanted = {norm(n) for names in pk.values() for n in names}
found = {}
for d in sys.path:
    try:
        entries = sorted(os.listdir(d or "."))
    except OSError:
        continue
    for e in entries:
        if not e.endswith((".dist-info", ".egg-info")):
            continue
        name, _, rest = e.rsplit(".", 1)[0].partition("-")
        if norm(name) in wanted and norm(name) not in found:
            found[norm(name)] = (os.path.join(d, e), rest.split("-")[0])
def version(path, fallback):
    meta = path
    if os.path.isdir(path):
        meta = os.path.join(path, "METADATA" if path.endswith(".dist-info") else "PKG-INFO")
    try:
        with open(meta, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():
                    break
    except OSError:
        pass
    return fallback or None
def ver(names):
    for n in names:
        if norm(n) in found:
            return version(*found[norm(n)])
    return None
packages = {k: ver(v) for k, v in pk.items()}
tf = None
if packages.get("tensorflow"):
    import ast
    from importlib import util
    info = None
    try:
        spec = util.find_spec("tensorflow")
        for d in spec.submodule_search_locations or []:
            p = os.path.join(d, "python", "platform", "build_info.py")
            if os.path.exists(p):
                for node in ast.parse(open(p).read()).body:
                    target = getattr(node, "targets", [None])[0]
                    if getattr(target, "id", "") == "build_info":
                        info = ast.literal_eval(node.value)
    except Exception:
        info = None
    if not isinstance(info, dict):
        try:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
            out = sys.stdout
            sys.stdout = sys.stderr
            try:
                import tensorflow
                info = dict(tensorflow.sysconfig.get_build_info())
            finally:
                sys.stdout = out
        except Exception:
            info = {}
    tf = {"cuda_version": info.get("cuda_version"), "cudnn_version": info.get("cudnn_version")}
    tf = {k: (str(v) if v else None) for k, v in tf.items()}
base = getattr(sys, "_base_executable", None) if sys.prefix != sys.base_prefix else None
sp = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
print("@dlrig-python-env " + enc({
    "python": sys.executable,
    "base_executable": base,
    "version": "%d.%d.%d" % sys.version_info[:3],
    "site_packages": sp,
    "packages": packages,
    "tf_build": tf,
}))
""".strip()


def parse_python_env(output: list[str]) -> PythonEnvDict:
    """Find the marker line printed by the script and decode its JSON."""
    for line in output:
        if line.startswith(MARKER):
            try:
                data = json.loads(line[len(MARKER) :])
            except ValueError as e:
                raise FactProcessError(f"unreadable Python environment line: {line!r}") from e
            return data
    first = next((line for line in output if line.strip()), "")
    raise FactProcessError(f"the Python environment script printed no result: {first!r}")


class PythonEnv(FactBase[PythonEnvDict | None]):
    """
    Returns an interpreter's path, version, site-packages and deep-learning framework versions.

    + python: the interpreter to ask (a name on ``PATH`` or a path), default ``python3``

    Keys: ``python`` (``sys.executable``), ``base_executable`` (in a venv: the interpreter it
    was made from, else None), ``version`` (``"3.11.2"``), ``site_packages``,
    ``packages`` (installed versions of tensorflow, keras, torch, torchvision, jax and numpy,
    None for those not installed) and ``tf_build`` (the CUDA and cuDNN versions the installed
    TensorFlow was built for; None without TensorFlow). One interpreter run, no imports of
    the frameworks themselves.

    None when the interpreter does not exist.

    **Example:**

    .. code:: python

        env = host.get_fact(PythonEnv, python="/opt/venv/bin/python")
        torch = env and env["packages"]["torch"]
    """

    @override
    def requires_command(self, python: str = "python3") -> str:
        return shlex.quote(python)

    @override
    def command(self, python: str = "python3") -> StringCommand:
        return StringCommand(
            "LC_ALL=C PYTHONIOENCODING=utf-8",
            QuoteString(python),
            "-c",
            QuoteString(_SCRIPT),
            *[QuoteString(f"{key}={','.join(names)}") for key, names in PACKAGES.items()],
        )

    @override
    def process(self, output: list[str]) -> PythonEnvDict | None:
        return parse_python_env(output)
