"""README stays true: the data-key table equals the code, the test command is CI's."""

from __future__ import annotations

from pathlib import Path

from deploys.lib import datadoc
from deploys.lib.data import all_defaults, all_docs, deploy_modules

REPO = Path(__file__).resolve().parents[1]


def test_readme_data_table_equals_defaults():
    readme = (REPO / "README.md").read_text()
    assert datadoc.readme_section(readme) == datadoc.table(), (
        "README's data-key table drifted: run python -m deploys.lib.datadoc --write"
    )


def test_every_key_is_documented_and_prefixed():
    docs = all_docs()
    for prefix, defaults in all_defaults().items():
        assert defaults, f"{prefix} deploy has no DEFAULTS"
        for key in defaults:
            assert key.startswith(prefix), f"{key} lacks its deploy's prefix {prefix}"
            assert docs.get(key, "").strip(), f"{key} has no description in DOCS"


def test_packaged_deploys_are_found():
    assert {"deploys.apt_sources", "deploys.ldconfig"} <= set(deploy_modules())


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci/run").read_text()
    assert "\n./test.sh\n" in readme
    assert "exec ./test.sh" in ci.splitlines()


def test_readme_plan_table_names_every_plan_field():
    import dataclasses
    import re

    from deploys.lib.plan import Plan

    text = (REPO / "README.md").read_text()
    table = text[text.index("### The plan") :].split("\n\n")[2]
    named = set()
    for line in table.splitlines()[2:]:
        named |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    assert named == {f.name for f in dataclasses.fields(Plan)}
