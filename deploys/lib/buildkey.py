"""Build keys: what a source build was made from, hashed, recorded on the host as the last step.

A build key is the sha256 of the canonical JSON (sorted keys, no spaces, ASCII) of the build's
inputs. The key file holds the inputs in clear next to the hash, so a changed key can be
explained ("cxx_version 12.2.0 -> 13.3.0")::

    {"build_key": "<sha256>", "inputs": {...}, "name": "boost"}

Inputs come in two kinds:

+ **declared** inputs, known on the controller from host data: version, source sha256,
  libraries, flags, the compiler and interpreter *names*, the recipe version, …;
+ **probed** inputs, which only the host can tell: the compiler's version (``$CXX
  -dumpfullversion -dumpversion``), its target (``-dumpmachine``) and first ``--version`` line,
  the Python ABI (``SOABI``) and NumPy major version, the OS (``/etc/os-release``) and machine.
  A *spec* names which tools to probe: ``{"cxx": "g++", "python": "python3"}``.

The same code computes the key on both sides: this module is stdlib-only and is shipped as-is
to the host (``python3 -c <this file's source> state|check|write SPEC PATH``, the source
shipped base64-encoded by ``shipped``), so the controller
and the host can never disagree on canonicalisation or hashing.

How a deploy uses it (``deploys/boost.py`` is the reference; Caffe reuses it):

1. At plan time a fact runs ``state``: it reads the recorded key file and probes the tools. When
   every probed tool exists, the custom ``@operation`` compares the recorded key with the expected
   one and either does nothing (``host.noop("… is built (key abc123)")``) or yields the build,
   naming the inputs that changed.
2. When a tool is missing at plan time (the compiler is installed earlier in the same run), the
   plan cannot know the key; the operation yields the build script anyway, and the script
   **starts** with ``check``: it re-probes on the host, after the compiler was installed, and
   exits without building when the recorded key already matches. Either way nothing is rebuilt
   needlessly and nothing is skipped wrongly.
3. The build script **ends** with ``write``: it re-probes with the tools actually used and
   writes the key file atomically (temp file, fsync, rename). It is the very last step, after
   install and ldconfig, so a build killed anywhere before it leaves no key (or the old key of a
   prefix that was swapped out), and the next run builds again. The next plan probes the same
   tools and computes the same key, so the run after a build changes nothing.

The compiler is a plain input today (a deploy data key such as ``boost_cxx``); when the preflight
plan resolves it, pass the resolved name in the spec and nothing else changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from typing import Any

FORMAT = 1  # part of every key: bump when the meaning of inputs changes


def canonical(inputs: dict[str, Any]) -> str:
    """The canonical JSON text of ``inputs``: sorted keys, no whitespace, ASCII only."""
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def digest(inputs: dict[str, Any]) -> str:
    """The build key of ``inputs``: sha256 (hex) of their canonical JSON."""
    return hashlib.sha256(canonical(inputs).encode("ascii")).hexdigest()


def record(name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The key file's content for ``inputs``: the inputs in clear plus their hash."""
    return {"build_key": digest(inputs), "inputs": inputs, "name": name}


def render(name: str, inputs: dict[str, Any]) -> str:
    """The key file's text (stable: same inputs, same bytes)."""
    return json.dumps(record(name, inputs), sort_keys=True, indent=2) + "\n"


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Human-readable differences between recorded and expected inputs, one per input."""
    if not old:
        return ["no build recorded"]
    out = []
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            out.append(f"{k}: {old.get(k)!r} -> {new.get(k)!r}")
    return out


# --- probes (run on the host) ----------------------------------------------------------------


def _run(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip()


def _os_release() -> str:
    fields: dict[str, str] = {}
    try:
        with open("/etc/os-release") as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                fields[k] = v.strip('"')
    except OSError:
        pass
    return f"{fields.get('ID', 'unknown')} {fields.get('VERSION_ID', '')}".strip()


_PY_PROBE = (
    "import sys, sysconfig\n"
    "try:\n"
    "    import numpy\n"
    "    np = numpy.__version__.split('.')[0]\n"
    "except Exception:\n"
    "    np = 'none'\n"
    "print(sysconfig.get_config_var('SOABI') or '')\n"
    "print('%d.%d' % sys.version_info[:2])\n"
    "print(np)\n"
)


def probe(spec: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Probe the tools named in ``spec`` on this machine; return (probed inputs, missing tools).

    + spec: tool role → command name or path; known roles: ``cxx`` (a C++ compiler),
      ``python`` (an interpreter)
    """
    found: dict[str, Any] = {"os": _os_release(), "machine": platform.machine()}
    missing: list[str] = []
    cxx = spec.get("cxx")
    if cxx:
        path = shutil.which(cxx)
        version = _run([path, "-dumpfullversion", "-dumpversion"]) if path else None
        ident = _run([path, "--version"]) if path else None
        if path and version and ident:
            found["cxx_version"] = version.splitlines()[0]
            found["cxx_machine"] = _run([path, "-dumpmachine"]) or ""
            found["cxx_id"] = ident.splitlines()[0]
        else:
            missing.append(f"cxx {cxx}")
    python = spec.get("python")
    if python:
        path = shutil.which(python)
        out = _run([path, "-c", _PY_PROBE]) if path else None
        lines = out.splitlines() if out else []
        if len(lines) == 3:
            found["python_abi"], found["python_version"], found["numpy"] = lines
        else:
            missing.append(f"python {python}")
    return found, missing


def expected(spec: dict[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """All inputs (declared + probed) for ``spec``, or (None, missing tools)."""
    found, missing = probe(spec.get("probe", {}))
    if missing:
        return None, missing
    return {"format": FORMAT, **spec.get("inputs", {}), **found}, []


def read(path: str) -> dict[str, Any] | None:
    """The recorded key file at ``path``, or None when absent or unreadable (= no build)."""
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("inputs"), dict):
        return None
    if rec.get("build_key") != digest(rec["inputs"]):
        return None  # edited or corrupt: not a trustworthy record
    return rec


def write(path: str, name: str, inputs: dict[str, Any]) -> None:
    """Write the key file atomically: temp file in the same directory, fsync, rename."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".buildkey-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(render(name, inputs))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str]) -> int:
    """Host entry point: ``state|check|write SPEC_JSON PATH``.

    + state: print ``{"recorded": …, "expected": …, "missing": […]}`` as JSON (for the fact)
    + check: exit 0 when the recorded key equals the expected key, else 1 (with the reason)
    + write: record the expected key (fails when a tool is missing)
    """
    if len(argv) != 4 or argv[1] not in ("state", "check", "write"):
        print("usage: buildkey state|check|write SPEC_JSON PATH", file=sys.stderr)
        return 2
    command, spec, path = argv[1], json.loads(argv[2]), argv[3]
    name = spec.get("name", "build")
    inputs, missing = expected(spec)
    recorded = read(path)
    if command == "state":
        exp = record(name, inputs) if inputs is not None else None
        print(json.dumps({"recorded": recorded, "expected": exp, "missing": missing}))
        return 0
    if inputs is None:
        print(f"cannot compute the build key: missing {', '.join(missing)}", file=sys.stderr)
        return 1
    if command == "check":
        if recorded and recorded["build_key"] == digest(inputs):
            print(f"{name}: build key {digest(inputs)[:12]} already recorded in {path}")
            return 0
        old = recorded["inputs"] if recorded else None
        print(f"{name}: build needed: {'; '.join(changes(old, inputs))}")
        return 1
    write(path, name, inputs)
    print(f"{name}: recorded build key {digest(inputs)[:12]} in {path}")
    return 0


def host_program() -> str:
    """This module's source, to run on a host with ``python3 -c``."""
    with open(__file__) as f:
        return f.read()


def shipped(text: str) -> str:
    """A shell word that expands to ``text`` on the host: ``"$(echo <base64> | base64 -d)"``.

    Base64 holds no quotes, so the word stays the same size however many ``sh -c`` layers
    (sudo, chroot, su) a connector wraps around it; quoting a 10 kB script directly grows
    several-fold per layer and can pass Linux's 128 kB limit for one argument.
    """
    import base64

    return '"$(echo ' + base64.b64encode(text.encode()).decode("ascii") + ' | base64 -d)"'


if __name__ == "__main__":
    sys.exit(main(sys.argv))
