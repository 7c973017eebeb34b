"""deb-src rewriting and third-party repo checks, on real sources files."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploys.lib.apt_text import (
    enable_deb_src,
    enable_deb_src_deb822,
    enable_deb_src_one_line,
    keyring_fingerprints,
    parse_one_line,
    parse_repos,
)

DATA = Path(__file__).parent / "apt_text"
FPR = "48FBFA9355D51C3BD29DBBCF293CD8EFE31179B8"


def _read(name: str) -> str:
    return (DATA / name).read_text()


def test_ubuntu_commented_deb_src_lines_are_uncommented_in_place():
    before = _read("ubuntu-22.04-sources.list")
    after = enable_deb_src_one_line(before)
    assert "# deb-src" not in after
    assert after.count("\ndeb-src ") == before.count("# deb-src ") == 6
    assert len(after.splitlines()) == len(before.splitlines())
    assert "deb-src http://archive.ubuntu.com/ubuntu/ jammy main restricted\n" in after


def test_debootstrap_list_gets_a_deb_src_line_after_its_deb_line():
    after = enable_deb_src_one_line(_read("debootstrap-sources.list"))
    assert after == (
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb-src http://deb.debian.org/debian bookworm main\n"
    )


def test_options_are_kept_on_added_lines():
    text = "deb [arch=amd64 signed-by=/k.gpg] https://x.example/repo stable main\n"
    assert enable_deb_src_one_line(text).splitlines()[1] == (
        "deb-src [arch=amd64 signed-by=/k.gpg] https://x.example/repo stable main"
    )


def test_commented_deb_src_for_another_suite_is_left_commented():
    text = "deb http://a/ x main\n# deb-src http://a/ y main\n"
    assert enable_deb_src_one_line(text) == (
        "deb http://a/ x main\ndeb-src http://a/ x main\n# deb-src http://a/ y main\n"
    )


def test_commented_deb_lines_stay_commented():
    text = "# deb http://a/ x main\n"
    assert enable_deb_src_one_line(text) == text


@pytest.mark.parametrize("name", ["debian-12-debian.sources", "ubuntu-24.04-ubuntu.sources"])
def test_deb822_types_gain_deb_src(name):
    before = _read(name)
    after = enable_deb_src_deb822(before)
    assert "Types: deb\n" not in after
    assert after.count("Types: deb deb-src\n") == before.count("Types: deb\n") == 2
    # Nothing else moved: same lines apart from the Types lines.
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert all(a == "Types: deb" for a, _ in changed)


def test_deb822_disabled_stanza_is_left_alone():
    text = "Types: deb\nURIs: http://a/\nSuites: x\nComponents: main\nEnabled: no\n"
    assert enable_deb_src_deb822(text) == text


def test_format_is_picked_by_file_name():
    assert enable_deb_src("/e/x.sources", "Types: deb\n") == "Types: deb deb-src\n"
    assert enable_deb_src("/e/x.list", "deb http://a/ x main\n").count("deb-src") == 1


_lines = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "deb http://a/ x main",
                "# deb-src http://a/ x main",
                "deb-src http://a/ x main",
                "deb [arch=amd64] http://b/ y main contrib",
                "# a comment",
                "",
                "#deb-src http://b/ y main contrib",
            ]
        ),
        st.text(alphabet="abc #[]:/.-\t", max_size=30),
    ),
    max_size=12,
)


@given(_lines)
def test_one_line_rewrite_is_idempotent_and_only_adds(lines):
    text = "\n".join(lines) + "\n"
    once = enable_deb_src_one_line(text)
    assert enable_deb_src_one_line(once) == once
    kept = [line.lstrip("# ") for line in text.splitlines()]
    for line in once.splitlines():
        entry = parse_one_line(line)
        if not entry or entry.type != "deb-src":
            assert line.lstrip("# ") in kept


@given(
    st.lists(
        st.sampled_from(
            [
                "Types: deb",
                "Types: deb-src",
                "URIs: http://a/",
                "",
                "# c",
                "Enabled: no",
                "Suites: x",
            ]
        ),
        max_size=14,
    )
)
def test_deb822_rewrite_is_idempotent(lines):
    text = "\n".join(lines) + "\n"
    once = enable_deb_src_deb822(text)
    assert enable_deb_src_deb822(once) == once


def test_keyring_fingerprints_from_real_gpg_output():
    single = keyring_fingerprints(_read("debian-archive-bookworm-stable.colons").splitlines())
    assert single == ["4D64FEC119C2029067D6E791F8D2585B8783D481"]
    many = keyring_fingerprints(_read("debian-archive-keyring.colons").splitlines())
    assert "4D64FEC119C2029067D6E791F8D2585B8783D481" in many
    # Subkey fingerprints (after "sub") are not primary keys.
    assert "A7236886F3CCCAAD148A27F80E98404D386FA1D9" not in many
    assert len(many) == _read("debian-archive-keyring.colons").count("\npub:") + 1


GOOD = {
    "name": "example",
    "uri": "https://repo.example.org/apt",
    "suites": "stable",
    "components": ["main"],
    "key_url": "https://repo.example.org/key.asc",
    "fingerprint": "48FB FA93 55D5 1C3B D29D  BBCF 293C D8EF E311 79B8",
}


def test_good_repo_is_normalised():
    (repo,) = parse_repos([GOOD])
    assert repo.fingerprint == FPR
    assert repo.suites == ("stable",)
    assert repo.keyring == "/etc/apt/keyrings/dlrig-example.gpg"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fingerprint": None}, "'fingerprint' must be"),
        ({"fingerprint": "ABCD1234"}, "'fingerprint' must be"),
        ({"key_url": None}, "exactly one of 'key_url' or 'key_file'"),
        ({"key_file": "k.asc"}, "exactly one of 'key_url' or 'key_file'"),
        ({"suites": "stable;rm -rf /"}, "malformed suite"),
        ({"suites": ["bad|suite"]}, "malformed suite"),
        ({"suites": []}, "'suites' is required"),
        ({"components": []}, "'components' is required"),
        ({"uri": "ftp://x/"}, "'uri' must be"),
        ({"name": "Bad Name"}, "'name' must match"),
        ({"keyurl": "x"}, "unknown field(s) ['keyurl']"),
    ],
)
def test_bad_repo_data_is_named(change, message):
    raw = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=None) as e:
        parse_repos([raw])
    assert message in str(e.value)
    assert "apt_sources_repos[0]" in str(e.value)


def test_duplicate_repo_names_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        parse_repos([GOOD, GOOD])
