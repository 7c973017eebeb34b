"""e2e: the apt_sources deploy on real Debian 12 roots (chroot and SSH)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.aptrepo import build_signed_repo
from tests.e2e.targets import serve_directory

pytestmark = pytest.mark.e2e

DEPLOY = "deploys.apt_sources.apt_sources"

DEB822 = """\
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


@pytest.mark.parametrize("target_fixture", ["debian_root", "ssh_host"])
def test_deb_src_one_line_then_apt_get_source(request, converge, target_fixture):
    target = request.getfixturevalue(target_fixture)
    first, _ = converge(target, DEPLOY)
    assert "Configure APT sources | Enable deb-src in the distribution's sources" in first.changed
    assert "Configure APT sources | Update APT lists (sources changed)" in first.changed

    host = target.testinfra()
    assert host.file("/etc/apt/sources.list").content_string == (
        "deb http://deb.debian.org/debian bookworm main\n"
        "deb-src http://deb.debian.org/debian bookworm main\n"
    )
    # deb-src really works: apt fetches a source package.
    cmd = host.run("cd /tmp && apt-get source --download-only hello")
    assert cmd.rc == 0, cmd.stderr
    assert host.run("ls /tmp/hello_*.dsc").rc == 0


def test_deb_src_deb822(debian_root, converge):
    root = debian_root.root
    (root.path / "etc/apt/sources.list").unlink()
    (root.path / "etc/apt/sources.list.d/debian.sources").write_text(DEB822)

    converge(debian_root, DEPLOY)

    text = (root.path / "etc/apt/sources.list.d/debian.sources").read_text()
    assert text == DEB822.replace("Types: deb\n", "Types: deb deb-src\n")
    assert root.run("apt-cache showsrc hello").stdout.startswith("Package: hello")


def _repo_data(repo, url: str, **override) -> dict:
    entry = {
        "name": "dlrig-test",
        "uri": url,
        "suites": [repo.suite],
        "components": [repo.component],
        "key_url": f"{url}/key.asc",
        "fingerprint": repo.fingerprint,
    }
    entry.update(override)
    return {"apt_sources_deb_src": False, "apt_sources_repos": [entry]}


@pytest.fixture
def signed_repo(tmp_path: Path):
    repo = build_signed_repo(tmp_path / "aptrepo", {"dlrig-hello": "1.0"})
    (repo.root / "key.asc").write_text(repo.key.read_text())
    with serve_directory(repo.root) as url:
        yield repo, url


@pytest.mark.parametrize("target_fixture", ["debian_root", "ssh_host"])
def test_third_party_repo_with_pinned_keyring(request, converge, signed_repo, target_fixture):
    target = request.getfixturevalue(target_fixture)
    repo, url = signed_repo

    converge(target, DEPLOY, _repo_data(repo, url))

    host = target.testinfra()
    keyring = host.file("/etc/apt/keyrings/dlrig-dlrig-test.gpg")
    assert keyring.exists and keyring.mode == 0o644
    listed = host.check_output(
        "gpg --show-keys --with-colons /etc/apt/keyrings/dlrig-dlrig-test.gpg"
    )
    assert f"fpr:::::::::{repo.fingerprint}:" in listed
    source = host.file("/etc/apt/sources.list.d/dlrig-dlrig-test.sources").content_string
    assert f"URIs: {url}" in source
    assert "Signed-By: /etc/apt/keyrings/dlrig-dlrig-test.gpg" in source
    # apt trusts the repository: the package is installable from it.
    assert f"{url} stable/main" in host.check_output("apt-cache policy dlrig-hello")
    install = host.run("sudo apt-get install -y dlrig-hello")
    assert install.rc == 0, install.stderr
    assert host.file("/usr/share/dlrig-hello/README").exists


def test_key_with_wrong_fingerprint_is_refused(debian_root, run_pyinfra, signed_repo, tmp_path):
    repo, url = signed_repo
    # A real key, but not the one the data pins.
    other = build_signed_repo(tmp_path / "other", {"x": "1"})
    data = _repo_data(repo, url, fingerprint=other.fingerprint)

    run = run_pyinfra(debian_root, DEPLOY, data)

    assert run.returncode != 0
    assert f"does not hold fingerprint {other.fingerprint}" in run.output
    assert not (debian_root.root.path / "etc/apt/keyrings/dlrig-dlrig-test.gpg").exists()
    assert not (debian_root.root.path / "etc/apt/sources.list.d/dlrig-dlrig-test.sources").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "apt_sources_repos": [
                    {
                        "name": "x",
                        "uri": "https://x.example/",
                        "suites": "s",
                        "components": "main",
                        "key_url": "https://x.example/k",
                    }
                ]
            },
            "apt_sources_repos[0] (x): 'fingerprint' must be",
        ),
        ({"apt_sources_repo": []}, "unknown data key 'apt_sources_repo'; did you mean"),
        ({"apt_sources_deb_src": "yes"}, "'apt_sources_deb_src' must be bool"),
    ],
)
def test_bad_data_fails_before_any_change(debian_root, run_pyinfra, data, message):
    before = (debian_root.root.path / "etc/apt/sources.list").read_text()
    packages = debian_root.root.packages()

    run = run_pyinfra(debian_root, DEPLOY, data)

    assert run.returncode != 0
    assert message in run.output
    assert (debian_root.root.path / "etc/apt/sources.list").read_text() == before
    assert debian_root.root.packages() == packages
