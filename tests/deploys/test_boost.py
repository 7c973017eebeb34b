"""Boost deploy: source resolution and data checks (no target needed)."""

from __future__ import annotations

import pytest
from pyinfra.api import DeployError

from deploys import boost

SUM = "a" * 64


def test_default_source_is_the_official_archive_with_its_known_sum():
    url, sha = boost.resolve_source(boost.DEFAULT_VERSION, "", "")
    assert url == "https://archives.boost.io/release/1.88.0/source/boost_1_88_0.tar.bz2"
    assert sha == boost.KNOWN_SHA256["1.88.0"]
    assert boost.DEFAULTS["boost_version"] == boost.DEFAULT_VERSION


@pytest.mark.parametrize(
    ("version", "url"),
    [("1.89.0", ""), ("1.88.0", "http://mirror.example/boost_1_88_0.tar.bz2")],
)
def test_sha256_required_when_version_or_url_changes(version, url):
    with pytest.raises(DeployError, match="boost_sha256 is required"):
        boost.resolve_source(version, url, "")
    assert boost.resolve_source(version, url, SUM)[1] == SUM


@pytest.mark.parametrize(
    ("version", "url", "sha", "key"),
    [
        ("1.88", "", SUM, "boost_version"),
        ("1.88.0", "ftp://x/boost.tar.bz2", SUM, "boost_url"),
        ("1.88.0", "", "ABC", "boost_sha256"),
    ],
)
def test_bad_source_data_names_the_key(version, url, sha, key):
    with pytest.raises(DeployError, match=key):
        boost.resolve_source(version, url, sha)


@pytest.mark.parametrize("prefix", ["relative/boost", "/usr", "/usr/local/", "/opt", "/a/../usr"])
def test_prefix_must_be_owned_by_the_deploy(prefix):
    with pytest.raises(DeployError, match="boost_prefix"):
        boost.check_prefix(prefix)
    assert boost.check_prefix("/opt/dlrig/boost/") == "/opt/dlrig/boost"


def test_libraries_are_checked_and_sorted():
    assert boost.check_libraries(["thread", "system", "thread"]) == ["system", "thread"]
    for bad in ([], ["system; rm -rf /"], [3]):
        with pytest.raises(DeployError, match="boost_libraries"):
            boost.check_libraries(bad)


def test_system_packages_are_debian_names():
    assert boost.system_packages(["filesystem", "program_options", "python"]) == [
        "libboost-filesystem-dev",
        "libboost-program-options-dev",
        "libboost-python-dev",
    ]


def test_build_spec_declares_inputs_and_probes_compiler_and_python():
    spec = boost.build_spec("1.88.0", SUM, ["python", "system"], "/opt/b", "g++-12", "python3")
    assert spec["probe"] == {"cxx": "g++-12", "python": "python3"}
    assert boost.build_spec("1.88.0", SUM, ["system"], "/b", "g++", "py")["probe"] == {"cxx": "g++"}
    assert spec["inputs"]["sha256"] == SUM and spec["inputs"]["b2_options"] == boost.B2_OPTIONS
