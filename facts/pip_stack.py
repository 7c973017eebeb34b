"""Facts for the Python stack: installed distributions, index offers, what frameworks see."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from pyinfra.api import FactBase, FactProcessError, QuoteString, StringCommand
from pyinfra.facts.pip import PipPackages
from typing_extensions import override

from deploys.lib.pip_report import parse_pip_list

# --- installed distributions ------------------------------------------------------------------


class PipDistributions(PipPackages):
    """
    Returns the distributions installed for an interpreter: canonical name → set of versions.

    Like pyinfra's ``PipPackages``, but read through ``pip list --format=json``: local version
    labels (``torch 2.13.0+cpu``) and direct-URL installs keep their versions, and names are
    canonical (``jupyter-http-over-ws``). A missing interpreter gives ``{}``.

    + python: the interpreter whose environment is read (a venv's ``bin/python``)

    **Example:**

    .. code:: python

        host.get_fact(PipDistributions, python="/opt/dlrig/venv/bin/python")
        # {"torch": {"2.13.0+cpu"}, "keras": {"3.15.1"}, ...}
    """

    @override
    def requires_command(self, python: str = "python3", **kwargs: Any) -> str:  # type: ignore[override]
        return python

    @override
    def command(self, python: str = "python3", **kwargs: Any) -> StringCommand:  # type: ignore[override]
        return StringCommand(
            QuoteString(python),
            "-m pip --disable-pip-version-check --no-input list --format=json",
            "2>/dev/null || echo '[]'",
        )

    @override
    def process(self, output: list[str]) -> dict[str, set[str]]:  # type: ignore[override]
        try:
            return parse_pip_list("\n".join(output))
        except ValueError as e:
            raise FactProcessError(str(e)) from None


# --- what the package indexes offer (checked before anything changes) -------------------------

_INDEX_FILES = r"""
import json, os, re, ssl, sys, urllib.request
from html.parser import HTMLParser

cert, sources, names = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
ctx = ssl.create_default_context(cafile=cert or None)

class Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.files, self.inside = [], False
    def handle_starttag(self, tag, attrs):
        self.inside = tag == "a"
    def handle_data(self, data):
        if self.inside and data.strip():
            self.files.append(data.strip())
    def handle_endtag(self, tag):
        self.inside = False

out = {}
for name in names:
    entry = out.setdefault(name, {"files": [], "errors": []})
    for src in sources:
        try:
            if src.startswith("/") or src.startswith("file://"):
                path = src[7:] if src.startswith("file://") else src
                if os.path.isdir(path):
                    entry["files"] += sorted(os.listdir(path))
                continue
            url = src.rstrip("/") + "/" + re.sub(r"[-_.]+", "-", name).lower() + "/"
            req = urllib.request.Request(url, headers={"User-Agent": "dlrig-pip-stack"})
            with urllib.request.urlopen(req, context=ctx, timeout=60) as r:
                parser = Anchors()
                parser.feed(r.read().decode("utf-8", "replace"))
                entry["files"] += parser.files
        except urllib.error.HTTPError as e:
            if e.code != 404:
                entry["errors"].append("%s: HTTP %s" % (url, e.code))
        except Exception as e:
            entry["errors"].append("%s: %s" % (src, e))
print(json.dumps(out))
"""


class IndexFileDict(TypedDict):
    files: list[str]
    errors: list[str]


class IndexFiles(FactBase[dict[str, IndexFileDict]]):
    """
    Returns the file names package indexes and find-links directories offer for each package,
    fetched from the host itself (its network, proxy and CA bundle), with the stdlib only.

    + python: an interpreter on the host (no pip needed)
    + sources: simple index base URLs (``https://pypi.org/simple``) and find-links directories
    + names: package names
    + cert: CA bundle to verify TLS with (``None``: the interpreter's default)

    **Example:**

    .. code:: python

        host.get_fact(IndexFiles, python="python3", sources=["https://pypi.org/simple"],
                      names=["keras"], cert="/etc/ssl/certs/ca-certificates.crt")
        # {"keras": {"files": ["keras-3.15.1-py3-none-any.whl", ...], "errors": []}}
    """

    @override
    def requires_command(self, python: str, **kwargs: Any) -> str:
        return python

    @override
    def command(
        self, python: str, sources: list[str], names: list[str], cert: str | None = None
    ) -> StringCommand:
        return StringCommand(
            QuoteString(python),
            "-c",
            QuoteString(_INDEX_FILES),
            QuoteString(cert or ""),
            QuoteString(json.dumps(list(sources))),
            QuoteString(json.dumps(list(names))),
        )

    @override
    def process(self, output: list[str]) -> dict[str, IndexFileDict]:
        try:
            return json.loads("\n".join(output))
        except ValueError as e:
            raise FactProcessError(f"index listing is not JSON: {e}") from None


# --- what the installed frameworks see ---------------------------------------------------------

_FRAMEWORKS = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
out = {"python": sys.version.split()[0]}
for name in json.loads(sys.argv[1]):
    info = {}
    try:
        if name == "tensorflow":
            import tensorflow as tf
            info["version"] = tf.__version__
            info["devices"] = [d.device_type + ":" + d.name.rsplit(":", 1)[-1]
                               for d in tf.config.list_physical_devices()]
            build = tf.sysconfig.get_build_info()
            info["cuda"] = build.get("cuda_version")
            info["gpu"] = bool(tf.config.list_physical_devices("GPU"))
        elif name == "torch":
            import torch
            info["version"] = torch.__version__
            info["cuda"] = torch.version.cuda
            info["gpu"] = torch.cuda.is_available()
            devices = ["cpu"]
            if info["gpu"]:
                devices += ["cuda:%d %s" % (i, torch.cuda.get_device_name(i))
                            for i in range(torch.cuda.device_count())]
            info["devices"] = devices
        else:
            import importlib, importlib.metadata
            module = importlib.import_module(name.replace("-", "_"))
            info["version"] = (getattr(module, "__version__", None)
                               or importlib.metadata.version(name))
    except Exception as e:
        info["error"] = "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[-1:] or "")
    out[name] = info
print("DLRIG-FRAMEWORKS " + json.dumps(out))
"""


class FrameworkReport(FactBase[dict[str, Any]]):
    """
    Imports each framework in the target interpreter and returns versions, the CUDA each was
    built with, the devices it sees, or the import error. A missing interpreter gives ``{}``.

    + python: the target interpreter (a venv's ``bin/python``)
    + modules: import names, e.g. ``["tensorflow", "keras", "torch"]``

    **Example:**

    .. code:: python

        host.get_fact(FrameworkReport, python="/opt/dlrig/venv/bin/python", modules=["torch"])
        # {"python": "3.11.2", "torch": {"version": "2.13.0+cpu", "gpu": False, ...}}
    """

    @override
    def requires_command(self, python: str, **kwargs: Any) -> str:
        return python

    @override
    def default(self) -> dict[str, Any]:
        return {}

    @override
    def command(self, python: str, modules: list[str]) -> StringCommand:
        return StringCommand(
            QuoteString(python),
            "-c",
            QuoteString(_FRAMEWORKS),
            QuoteString(json.dumps(list(modules))),
            "2>/dev/null || true",
        )

    @override
    def process(self, output: list[str]) -> dict[str, Any]:
        for line in output:
            if line.startswith("DLRIG-FRAMEWORKS "):
                return json.loads(line.split(" ", 1)[1])
        raise FactProcessError("framework report missing from output")
