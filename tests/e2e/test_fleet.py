"""e2e: a fleet of 8 SSH hosts: the server entry deploy's light profile in one pyinfra run.

Every host is reached as user ``dlrig`` with sudo; the light profile is deploys/gpu_server.py
without builds, pip stack and speed check (preflight, APT sources, toolchain, ldconfig,
datasets).

One fleet is shared by the tests of this module (starting 8 roots costs ~20 s); each test
leaves every host reachable, with its original host key. Failure cases: an unreachable host,
a host whose key changed, a step failing on one host — the others always finish, and the
fleet summary names the failed host and the step.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import fleet, targets

pytestmark = pytest.mark.e2e

HOSTS = 8
# The server entry deploy's light profile: no builds, no pip stack, no speed check.
LIGHT_PROFILE = "deploys/gpu_server.py"
LIBDIR = "/opt/dlrig-fleet/lib"
DATASET = "/data/fleet/classes.txt"
DATASET_BODY = "0 background\n1 person\n"
PROFILE_DATA: dict = {
    "profile_skip": ["boost", "caffe", "pip_stack", "speed_check"],
    "preflight_require_gpu": False,
}
# Step names as pyinfra reports them: "<deploy> | <operation>".
DEB_SRC = "Configure APT sources | Enable deb-src in the distribution's sources"
REGISTER = "Register library directories | Register library directories of data"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[targets.Target]]:
    workdir = tmp_path_factory.mktemp("fleet")
    site = workdir / "site"
    site.mkdir()
    (site / "classes.txt").write_text(DATASET_BODY)
    with (
        fleet.local_distribution_repo(workdir) as prepare,
        targets.serve_directory(site) as url,
        fleet.ssh_fleet(HOSTS, workdir, prepare=prepare, tarball=fleet.seeded_tarball()) as up,
    ):
        PROFILE_DATA["datasets_items"] = [
            {
                "name": "classes",
                "url": f"{url}/classes.txt",
                "sha256": hashlib.sha256(DATASET_BODY.encode()).hexdigest(),
                "dest": DATASET,
            }
        ]
        yield up


def _entries(name: str) -> dict:
    """The light profile's data, with one ld.so.conf.d entry named ``name``."""
    return {**PROFILE_DATA, "ldconfig_entries": {name: [LIBDIR]}}


def _conf(target: targets.Target, name: str) -> Path:
    return target.root.path / f"etc/ld.so.conf.d/dlrig-data-{name}.conf"


def _summary(run: targets.Run) -> dict[str, str]:
    """Host name → its line of the dlrig fleet summary."""
    out = run.output
    assert "--> dlrig fleet summary:" in out, out[-3000:]
    block = out[out.rindex("--> dlrig fleet summary:") :].splitlines()[1:]
    lines = {}
    for line in block:
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].startswith("dlrig-test-"):
            lines[parts[0]] = parts[1]
    return lines


def test_light_profile_converges_on_all_as_sudo_user(hosts, tmp_path):
    first, _second = targets.converge_twice(
        hosts, LIGHT_PROFILE, _entries("fleet"), workdir=tmp_path
    )
    names = sorted(h.name for h in hosts)
    by_name = {op["name"]: op for op in first.operations}
    # Every step ran on every host in the one run; each host changed.
    assert all(op["hosts"] == HOSTS for op in first.operations), first.operations
    assert sorted(by_name[REGISTER]["success"]) == names
    assert sorted(by_name[DEB_SRC]["success"]) == names
    summary = _summary(first)
    assert sorted(summary) == names and all(s.startswith("ok") for s in summary.values())

    for h in hosts:
        assert h.user == "dlrig" and h.data["_sudo"] is True
        t = h.testinfra()
        assert t.user().name == "dlrig" and t.user().uid != 0
        conf = t.file("/etc/ld.so.conf.d/dlrig-data-fleet.conf")
        assert conf.user == "root" and conf.group == "root" and conf.mode == 0o644
        assert LIBDIR in conf.content_string
        assert "deb-src " in t.file("/etc/apt/sources.list").content_string
        assert t.package("gcc-12").is_installed and t.package("ccache").is_installed
        assert "/usr/bin/gcc-12" in t.check_output("update-alternatives --query gcc")
        data_file = t.file(DATASET)
        assert data_file.content_string == DATASET_BODY and data_file.user == "root"
        assert t.file("/etc/apt/sources.list").user == "root"
        # No step wrote into a system place as the login user: everything went through sudo.
        stray = h.root.run(
            "find / -xdev -user dlrig -not -path '/home/dlrig*' -not -path '/tmp*' "
            "-not -path '/var/tmp*' -print"
        ).stdout
        assert stray == "", stray


def test_login_user_is_unprivileged_without_sudo(hosts, tmp_path):
    # The same deploy without sudo fails at its first write: no step succeeds by being root.
    h = hosts[0]
    run = targets.pyinfra(
        [h], LIGHT_PROFILE, {**_entries("nosudo"), "_sudo": False}, workdir=tmp_path
    )
    assert run.returncode != 0
    assert "Permission denied" in run.output
    assert not _conf(h, "nosudo").exists()
    line = _summary(run)[h.name]
    assert line.startswith(f'FAILED  at "{REGISTER}"'), line


def test_unreachable_host_is_reported_and_the_rest_converge(hosts, tmp_path):
    down = hosts[3]
    fleet.stop_sshd(down)
    try:
        run = targets.pyinfra(hosts, LIGHT_PROFILE, _entries("unreach"), workdir=tmp_path)
    finally:
        fleet.start_sshd(down)
    assert run.returncode == 1, run.output[-3000:]
    assert run.results is not None, run.output[-3000:]
    assert run.results["failed_hosts"] == [down.name]
    assert f"[{down.name}] Could not connect" in run.output
    summary = _summary(run)
    assert summary[down.name].startswith("FAILED  at connect"), summary
    others = [h for h in hosts if h is not down]
    for h in others:
        assert summary[h.name].startswith("ok"), summary
        assert _conf(h, "unreach").exists()
    assert not _conf(down, "unreach").exists()
    # Back up, the host catches up and the others have nothing left to do.
    again = targets.pyinfra(hosts, LIGHT_PROFILE, _entries("unreach"), workdir=tmp_path)
    assert again.returncode == 0, again.output[-3000:]
    changed = {n for op in again.operations for n in op["success"]}
    assert changed == {down.name}
    assert _conf(down, "unreach").exists()


def test_changed_host_key_is_refused(hosts, tmp_path):
    victim = hosts[5]
    original = fleet.known_hosts_line(victim)
    fleet.change_host_key(victim)
    assert fleet.known_hosts_line(victim) != original
    try:
        run = targets.pyinfra(hosts, LIGHT_PROFILE, _entries("rekeyed"), workdir=tmp_path)
        # sshd answers (it is the key that is wrong), and nothing ran there.
        assert run.returncode == 1, run.output[-3000:]
        assert run.results is not None and run.results["failed_hosts"] == [victim.name]
        assert "SSH host key error" in run.output
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in run.output
        assert _summary(run)[victim.name].startswith("FAILED  at connect")
        assert not _conf(victim, "rekeyed").exists()
        assert all(_conf(h, "rekeyed").exists() for h in hosts if h is not victim)

        # A host missing from known_hosts is refused too (strict, not trust-on-first-use).
        known_hosts = Path(victim.data["ssh_known_hosts_file"])
        known_hosts.write_text("")
        run = targets.pyinfra([victim], LIGHT_PROFILE, _entries("rekeyed"), workdir=tmp_path)
        assert run.returncode == 1
        assert "No host key for" in run.output
        assert known_hosts.read_text() == ""  # not learnt either
        assert not _conf(victim, "rekeyed").exists()
    finally:
        # Trust the new key, as an operator would after checking it out of band.
        Path(victim.data["ssh_known_hosts_file"]).write_text(fleet.known_hosts_line(victim) + "\n")
    run = targets.pyinfra([victim], LIGHT_PROFILE, _entries("rekeyed"), workdir=tmp_path)
    assert run.returncode == 0, run.output[-3000:]


def test_host_key_checking_off_needs_the_explicit_opt_out(hosts, tmp_path):
    h = hosts[1]
    data = {**_entries("optout"), "ssh_strict_host_key_checking": "accept-new"}
    run = targets.pyinfra([h], LIGHT_PROFILE, data, workdir=tmp_path)
    assert run.returncode != 0
    assert "fleet_insecure_host_keys" in run.output and "ssh_strict_host_key_checking" in run.output
    assert not _conf(h, "optout").exists()

    run = targets.pyinfra(
        [h], LIGHT_PROFILE, {**data, "fleet_insecure_host_keys": True}, workdir=tmp_path
    )
    assert run.returncode == 0, run.output[-3000:]
    assert _conf(h, "optout").exists()


def test_failing_step_on_one_host_is_named_and_the_rest_finish(hosts, tmp_path):
    broken = hosts[6]
    ldconfig = broken.root.path / "sbin/ldconfig"
    saved = ldconfig.read_bytes()
    ldconfig.unlink()
    ldconfig.write_text("#!/bin/sh\necho 'ldconfig: broken on purpose' >&2\nexit 1\n")
    ldconfig.chmod(0o755)
    try:
        run = targets.pyinfra(hosts, LIGHT_PROFILE, _entries("broken"), workdir=tmp_path)
    finally:
        ldconfig.unlink()
        ldconfig.write_bytes(saved)
        ldconfig.chmod(0o755)
    assert run.returncode == 1, run.output[-3000:]
    assert run.results is not None and run.results["failed_hosts"] == [broken.name]
    summary = _summary(run)
    # The entry is written, then its ldconfig fails: the step that registers it fails.
    assert summary[broken.name] == f'FAILED  at "{REGISTER}"'
    assert all(summary[h.name].startswith("ok") for h in hosts if h is not broken)
    by_name = {op["name"]: op for op in run.operations}
    assert by_name[REGISTER]["error"] == [broken.name]


def test_limit_runs_one_group_only(hosts, tmp_path):
    inventory = fleet.write_grouped_inventory(
        tmp_path / "grouped.py",
        {"rack_a": hosts[:3], "rack_b": hosts[3:]},
        _entries("limited"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", str(inventory), LIGHT_PROFILE, "--limit", "rack_a"],
        cwd=targets.REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [h for h in hosts if _conf(h, "limited").exists()] == hosts[:3]
    summary = _summary(targets.Run(proc.returncode, proc.stdout, proc.stderr, None))
    assert sorted(summary) == sorted(h.name for h in hosts[:3])
