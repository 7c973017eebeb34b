"""Build keys: canonical hashing, the key file, and the host program giving the same answers."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from deploys.lib import buildkey

SPEC = {
    "name": "demo",
    "inputs": {"version": "1.88.0", "libraries": ["filesystem", "system"]},
    "probe": {"python": sys.executable},
}

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(), _json, max_size=5))
def test_digest_ignores_key_order(inputs):
    reordered = dict(reversed(list(inputs.items())))
    assert buildkey.digest(inputs) == buildkey.digest(reordered)
    assert buildkey.canonical(inputs).isascii()


def test_digest_changes_with_any_input():
    base = {"version": "1.88.0", "cxx_version": "12.2.0"}
    assert buildkey.digest(base) != buildkey.digest({**base, "cxx_version": "13.1.0"})
    assert buildkey.digest(base) == buildkey.digest(dict(base))


def test_key_file_holds_inputs_in_clear_and_hash():
    text = buildkey.render("demo", {"b": 1, "a": "x"})
    rec = json.loads(text)
    assert rec == {
        "build_key": buildkey.digest({"a": "x", "b": 1}),
        "inputs": {"a": "x", "b": 1},
        "name": "demo",
    }
    assert text == buildkey.render("demo", {"a": "x", "b": 1})


def test_changes_name_the_inputs():
    assert buildkey.changes(None, {"a": 1}) == ["no build recorded"]
    assert buildkey.changes({"a": 1, "b": 2}, {"a": 1, "b": 3}) == ["b: 2 -> 3"]


def _host(tmp_path: Path, command: str, spec=SPEC) -> subprocess.CompletedProcess:
    # Exactly how the deploy runs it on a host: the module's source through python -c.
    return subprocess.run(
        [
            sys.executable,
            "-c",
            buildkey.host_program(),
            command,
            json.dumps(spec),
            str(tmp_path / "key.json"),
        ],
        capture_output=True,
        text=True,
    )


def test_host_program_write_then_check_then_state(tmp_path):
    assert _host(tmp_path, "check").returncode == 1
    state = json.loads(_host(tmp_path, "state").stdout)
    assert state["recorded"] is None and state["missing"] == []
    assert _host(tmp_path, "write").returncode == 0
    assert _host(tmp_path, "check").returncode == 0
    state = json.loads(_host(tmp_path, "state").stdout)
    assert state["recorded"] == state["expected"]
    inputs = state["expected"]["inputs"]
    # Controller and host agree: the recorded hash is the controller's digest of the inputs.
    assert state["recorded"]["build_key"] == buildkey.digest(inputs)
    assert inputs["version"] == "1.88.0" and inputs["python_abi"].startswith("cpython-")
    # A changed declared input → not the recorded build.
    other = {**SPEC, "inputs": {**SPEC["inputs"], "version": "1.89.0"}}
    out = _host(tmp_path, "check", other)
    assert out.returncode == 1 and "version: '1.88.0' -> '1.89.0'" in out.stdout


def test_missing_tool_gives_no_expected_key(tmp_path):
    spec = {**SPEC, "probe": {"cxx": "no-such-compiler-dlrig"}}
    state = json.loads(_host(tmp_path, "state", spec).stdout)
    assert state["expected"] is None and state["missing"] == ["cxx no-such-compiler-dlrig"]
    assert _host(tmp_path, "write", spec).returncode == 1
    assert not (tmp_path / "key.json").exists()


def test_tampered_key_file_is_not_trusted(tmp_path):
    assert _host(tmp_path, "write").returncode == 0
    path = tmp_path / "key.json"
    rec = json.loads(path.read_text())
    rec["inputs"]["version"] = "9.9.9"
    path.write_text(json.dumps(rec))
    assert buildkey.read(str(path)) is None
    assert _host(tmp_path, "check").returncode == 1


def test_shipped_word_expands_to_the_text_through_nested_shells():
    text = 'it\'s "quoted" $HOME `x` \\ \n\tend\n'
    word = buildkey.shipped(text)
    assert "'" not in word
    nested = f"printf %s {word}"
    for _ in range(3):
        nested = "sh -c " + shlex.quote(nested)
    out = subprocess.run(["sh", "-c", nested], capture_output=True, text=True, check=True)
    assert out.stdout == text.rstrip("\n")  # $(…) drops trailing newlines only
