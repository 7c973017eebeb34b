"""deploys.apt_packages.missing: which package specs the installed set does not satisfy."""

from __future__ import annotations

from deploys.apt_packages import missing

# Shape of pyinfra's DebPackages fact (captured from a Debian 12 root: `dpkg -l`, parsed).
INSTALLED = {
    "gcc-12": {"12.2.0-14"},
    "libc6": {"2.36-9+deb12u10"},
    "make": {"4.3-4.1"},
}


def test_names_present_or_missing() -> None:
    assert missing(["gcc-12", "make"], INSTALLED) == []
    assert missing(["gcc-12", "g++-12", "make", "curl"], INSTALLED) == ["g++-12", "curl"]


def test_arch_qualified_and_versioned_specs() -> None:
    assert missing(["libc6:amd64"], INSTALLED) == []
    assert missing(["gcc-12=12.2.0-14"], INSTALLED) == []
    assert missing(["gcc-12=12.2.0-15"], INSTALLED) == ["gcc-12=12.2.0-15"]


def test_nothing_installed() -> None:
    assert missing(["make"], {}) == ["make"]
    assert missing([], {}) == []
