"""The PythonEnv probe script, run on real interpreters: its versions equal importlib.metadata's.

The probe reads *.dist-info / *.egg-info metadata itself (importing importlib.metadata costs
~30 ms per host); these tests hold it to what importlib.metadata reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from facts.python import _SCRIPT, MARKER


def _probe(packages: dict[str, list[str]], env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, *[f"{k}={','.join(v)}" for k, v in packages.items()]],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith(MARKER))
    return json.loads(line[len(MARKER) :])


def _metadata(names: list[str], env: dict[str, str] | None = None) -> dict[str, str | None]:
    program = (
        "import json, sys\nfrom importlib import metadata\nout = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try:\n        out[n] = metadata.version(n)\n"
        "    except metadata.PackageNotFoundError:\n        out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program, *names],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout
    return json.loads(out)


def test_versions_of_this_environment_match_importlib_metadata() -> None:
    names = ["pyinfra", "PyYAML", "typing_extensions", "MarkupSafe", "Jinja2", "no-such-dist"]
    found = _probe({n: [n] for n in names})["packages"]
    assert found == _metadata(names)
    assert found["pyinfra"] and found["no-such-dist"] is None


def test_dist_info_and_egg_info_first_path_entry_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for d in (first, second):
        d.mkdir()
    # pip's layout: normalised name, METADATA with the version.
    (first / "Foo_Bar-1.2.3.dist-info").mkdir()
    (first / "Foo_Bar-1.2.3.dist-info/METADATA").write_text(
        "Metadata-Version: 2.1\nName: Foo-Bar\nVersion: 1.2.3\n\nVersion: 9.9 (body)\n"
    )
    (second / "foo_bar-2.0.dist-info").mkdir()
    (second / "foo_bar-2.0.dist-info/METADATA").write_text("Name: foo_bar\nVersion: 2.0\n")
    # Debian's layout: an egg-info directory with PKG-INFO, and a single egg-info file.
    (second / "baz-0.5.1-py3.11.egg-info").mkdir()
    (second / "baz-0.5.1-py3.11.egg-info/PKG-INFO").write_text("Name: baz\nVersion: 0.5.1\n")
    (second / "qux-3.1.egg-info").write_text("Metadata-Version: 1.1\nName: qux\nVersion: 3.1\n")
    env = {"PYTHONPATH": f"{first}{os.pathsep}{second}"}
    packages = {"foo": ["foo-bar"], "baz": ["missing", "baz"], "qux": ["qux"]}
    found = _probe(packages, env)["packages"]
    assert found == {"foo": "1.2.3", "baz": "0.5.1", "qux": "3.1"}
    reference = _metadata(["foo-bar", "baz", "qux"], env)
    assert found == {"foo": reference["foo-bar"], "baz": reference["baz"], "qux": reference["qux"]}


def test_output_is_json_for_any_path(tmp_path: Path) -> None:
    """The probe writes its JSON by hand (no json import on the host): odd paths round-trip."""
    odd = tmp_path / 'wé"ird \\ dir 🐍\t' / "site-packages"
    odd.mkdir(parents=True)
    env = _probe({"numpy": ["numpy"]}, {"PYTHONPATH": str(odd)})
    assert str(odd) in env["site_packages"]
    assert env["python"] == sys.executable
    assert env["version"] == ".".join(str(n) for n in sys.version_info[:3])


def test_a_venv_is_seen_through_to_its_base_interpreter():
    # The tests run in .venv: pyinfra @local from such a venv finds its python3 first on PATH.
    # The plan's base interpreter must be the one the venv was made from, not the venv.
    assert sys.prefix != sys.base_prefix, "run the suite from its venv (./test.sh makes one)"
    env = _probe({"numpy": ["numpy"]})
    assert env["python"] == sys.executable
    base = Path(env["base_executable"])
    assert base.exists() and not base.resolve().is_relative_to(Path(sys.prefix).resolve())
    plain = subprocess.run(
        [str(base), "-c", _SCRIPT, "numpy=numpy"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(plain.split(MARKER, 1)[1])["base_executable"] is None
