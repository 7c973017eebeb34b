"""Drive: data checks, PPA suite choice, the mount command, runner and systemd unit text."""

from __future__ import annotations

import pytest

from deploys.drive import DEFAULTS, PPA_FINGERPRINT
from deploys.lib.apt_text import parse_repo
from deploys.lib.drive import check, ppa_repo, ppa_suite, render_runner, render_unit

MAP = DEFAULTS["drive_ppa_ubuntu_for_debian"]


def _drive(**kw):
    return check({**DEFAULTS, **kw}, "/home/ml")


def test_ocamlfuse_command_and_auth_dir():
    d = _drive(drive_user="ml", drive_label="work", drive_allow_other=True)
    assert d.auth_dir == "/home/ml/.gdfuse/work"
    assert d.argv() == [
        "google-drive-ocamlfuse", "-label", "work", "-f", "-o", "allow_other", "/mnt/drive"
    ]  # fmt: skip


def test_rclone_command_uses_the_uploaded_config():
    d = _drive(drive_backend="rclone", drive_mount_point="/content/drive")
    assert d.auth_dir == "/home/ml/.config/rclone"
    assert d.argv()[:4] == ["rclone", "mount", "default:", "/content/drive"]
    assert "--config" in d.argv() and "/home/ml/.config/rclone/rclone.conf" in d.argv()


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"drive_backend": "gdrive"}, "drive_backend"),
        ({"drive_mount_point": "mnt/drive"}, "drive_mount_point"),
        ({"drive_mount_point": "/mnt/my drive"}, "drive_mount_point"),
        ({"drive_mount_point": "/mnt/../etc"}, "drive_mount_point"),
        ({"drive_label": "a b"}, "drive_label"),
        ({"drive_user": "Robert'); --"}, "drive_user"),
        ({"drive_supervisor": "cron"}, "drive_supervisor"),
        ({"drive_install": "snap"}, "drive_install"),
    ],
)
def test_bad_data_names_the_key(change, key):
    with pytest.raises(ValueError, match=key):
        _drive(**change)


def test_missing_user_is_refused():
    with pytest.raises(ValueError, match="does not exist"):
        check({**DEFAULTS, "drive_user": "nobody2"}, None)


def test_ppa_suite_per_distribution():
    assert ppa_suite("", "Ubuntu", "jammy", MAP) == "jammy"
    assert ppa_suite("", "Debian", "bookworm", MAP) == "jammy"
    assert ppa_suite("stable", "Debian", "sid", MAP) == "stable"
    with pytest.raises(ValueError, match="opam"):
        ppa_suite("", "Debian", "sid", MAP)
    with pytest.raises(ValueError, match="opam"):
        ppa_suite("", "Fedora", "", MAP)


def test_default_ppa_is_a_valid_pinned_repo():
    repo = parse_repo(0, ppa_repo(DEFAULTS["drive_ppa"], "jammy"))
    assert repo.fingerprint == PPA_FINGERPRINT
    assert repo.fingerprint.endswith("AD5F235DF639B041")  # the id upstream's wiki gives
    assert repo.keyring == "/etc/apt/keyrings/dlrig-google-drive-ocamlfuse.gpg"
    assert repo.suites == ("jammy",) and repo.components == ("main",)
    with pytest.raises(ValueError, match="unknown field"):
        ppa_repo({**DEFAULTS["drive_ppa"], "keyid": "x"}, "jammy")


def test_runner_and_unit_text():
    d = _drive(drive_user="ml")
    runner = render_runner(d)
    assert runner.startswith("#!/bin/sh\n")
    assert "export HOME=/home/ml\n" in runner
    assert runner.endswith("exec google-drive-ocamlfuse -label default -f /mnt/drive\n")
    unit = render_unit(d)
    assert "User=ml\n" in unit
    assert "ExecStart=/usr/local/lib/dlrig/drive-mount\n" in unit
    assert "Restart=on-failure\n" in unit and "WantedBy=multi-user.target\n" in unit
    assert "fusermount3 -uz /mnt/drive" in unit
