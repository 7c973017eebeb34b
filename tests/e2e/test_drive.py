"""e2e: Google Drive over FUSE in a real Debian root.

ocamlfuse: a local signed APT repository stands in for the alessandro-strada PPA (keyring pinned
by fingerprint, deb822 source with Signed-By, install). Its google-drive-ocamlfuse is a stand-in
script: it refuses to run without ``~/.gdfuse/<label>/{config,state}``, then mounts a tmpfs at
the mount point and stays in the foreground until SIGTERM, like ``google-drive-ocamlfuse -f``.
Driven over SSH with sudo (uploads are staged on the host). What is real here: the APT path,
the auth files and their modes, the runner and supervisor, the process and its arguments, the
mounts fact driving idempotence; not Google's API.

rclone: the real rclone from Debian's archive mounts for real through /dev/fuse, with a remote
that points at a local directory instead of Google Drive (skipped where /dev/fuse is absent).

Secrets: the auth files hold a random token; every run is ``pyinfra -vvv`` and the token must
not appear in its output.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e import targets
from tests.e2e.aptrepo import build_signed_repo
from tests.e2e.targets import serve_directory

pytestmark = pytest.mark.e2e

DEPLOY = "deploys.drive.drive"
MP = "/mnt/drive"

FAKE_OCAMLFUSE = """#!/bin/sh
# Stand-in for google-drive-ocamlfuse in dlrig's tests: checks the authorization files the
# real one reads, mounts a tmpfs at the mount point and stays in the foreground (-f).
label=default fg= mp=
while [ $# -gt 0 ]; do
  case "$1" in
    -label) label=$2; shift ;;
    -f) fg=1 ;;
    -o) shift ;;
    -*) ;;
    *) mp=$1 ;;
  esac
  shift
done
dir="$HOME/.gdfuse/$label"
if [ ! -r "$dir/config" ] || [ ! -r "$dir/state" ]; then
  echo "stand-in: no authorization in $dir" >&2; exit 2
fi
[ -n "$fg" ] || { echo "stand-in: only -f is supported" >&2; exit 2; }
mount -t tmpfs gdfuse-standin "$mp" || exit 1
trap 'kill $! 2>/dev/null; umount "$mp"; exit 0' TERM INT
while :; do sleep 3600 & wait $!; done
"""


def _mounted(root: Path, mount_point: str) -> dict[str, str] | None:
    target = str(root.resolve()) + mount_point
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == target:
                sep = fields.index("-")
                return {"type": fields[sep + 1], "source": fields[sep + 2]}
    return None


def _cmdlines(root: Path) -> dict[int, str]:
    out = {}
    for pid in targets._processes_in(root):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        out[pid] = raw.replace(b"\0", b" ").decode().strip()
    return out


def _wait_for(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _auth(tmp_path: Path, names: tuple[str, ...], body) -> tuple[Path, str]:
    token = "dlrig-secret-" + secrets.token_hex(16)
    auth = tmp_path / "auth"
    auth.mkdir()
    for name in names:
        (auth / name).write_text(body(name, token))
    return auth, token


def _assert_secret_file(root: Path, path: str, content: str) -> None:
    target = root / path.lstrip("/")
    assert target.read_text() == content
    assert target.stat().st_mode & 0o777 == 0o600, f"{path} is not 0600"


def test_drive_ocamlfuse_from_signed_ppa_standin(ssh_host, tmp_path, converge, run_pyinfra):
    # Over SSH as a user with sudo: the path where pyinfra stages uploads on the host.
    target = ssh_host
    root = target.root.path
    repo = build_signed_repo(
        tmp_path / "ppa",
        {"google-drive-ocamlfuse": "0.7.32"},
        files={
            "google-drive-ocamlfuse": {"/usr/bin/google-drive-ocamlfuse": (FAKE_OCAMLFUSE, 0o755)}
        },
    )
    shutil.copy(repo.key, repo.root / "key.asc")
    auth, token = _auth(
        tmp_path, ("config", "state"), lambda name, token: f"{name}_token={token}\n"
    )
    with serve_directory(repo.root) as base:
        data = {
            "drive_auth_dir": str(auth),
            "drive_ppa": {
                "uri": base,
                "suite": "stable",
                "key_url": f"{base}/key.asc",
                "fingerprint": repo.fingerprint,
            },
        }
        first, second = converge(target, DEPLOY, data, args=["-vvv"])
        for run in (first, second):
            assert token not in run.output, "a secret reached pyinfra's -vvv output"
        # Staged in the login user's 0700 directory, not the shared /tmp; nothing left behind.
        assert "/var/lib/dlrig/staging-dlrig/" in first.output
        assert (root / "var/lib/dlrig/staging-dlrig").stat().st_mode & 0o777 == 0o700
        left = target.root.run(f"grep -rl {token} /tmp /var/tmp /var/lib/dlrig", check=False)
        assert left.stdout == ""

        # The PPA path: pinned keyring, deb822 source with Signed-By, package from it.
        keyring = "/etc/apt/keyrings/dlrig-google-drive-ocamlfuse.gpg"
        assert (root / keyring.lstrip("/")).stat().st_size > 0
        sources = (root / "etc/apt/sources.list.d/dlrig-google-drive-ocamlfuse.sources").read_text()
        assert f"Signed-By: {keyring}" in sources and base in sources
        assert "google-drive-ocamlfuse 0.7.32 ii" in target.root.packages()

        # Auth files: 0600 in a 0700 directory, contents as on the controller.
        assert (root / "root/.gdfuse/default").stat().st_mode & 0o777 == 0o700
        for name in ("config", "state"):
            _assert_secret_file(root, f"/root/.gdfuse/default/{name}", f"{name}_token={token}\n")

        # Supervised process with the right arguments, and the mount it made.
        procs = _cmdlines(root)
        fuse = [c for c in procs.values() if "google-drive-ocamlfuse" in c and "supervise" not in c]
        assert fuse == [f"/bin/sh /usr/bin/google-drive-ocamlfuse -label default -f {MP}"]
        pid = int((root / "run/dlrig-drive.pid").read_text())
        assert (
            procs[pid] == "/bin/sh /usr/local/lib/dlrig/supervise /usr/local/lib/dlrig/drive-mount"
        )
        assert _mounted(root, MP) == {"type": "tmpfs", "source": "gdfuse-standin"}

        # The process dies (crash): the supervisor brings the mount back by itself.
        fuse_pid = next(p for p, c in procs.items() if c == fuse[0])
        os.kill(fuse_pid, 15)
        _wait_for(
            lambda: (
                _mounted(root, MP)
                and any(c == fuse[0] and p != fuse_pid for p, c in _cmdlines(root).items())
            ),
            "the supervisor to restart the mount",
        )

        # A new authorization on the controller is uploaded again and restarts the mount.
        (auth / "state").write_text(f"state_token={token}-refreshed\n")
        rerun = run_pyinfra(target, DEPLOY, data, args=["-vvv"])
        assert rerun.returncode == 0, rerun.output[-4000:]
        assert token not in rerun.output
        assert any("authorization file state" in n for n in rerun.changed)
        assert any("Mount Drive" in n for n in rerun.changed)
        _assert_secret_file(root, "/root/.gdfuse/default/state", f"state_token={token}-refreshed\n")
        assert int((root / "run/dlrig-drive.pid").read_text()) != pid
        assert _mounted(root, MP)

        # present=False: stopped and unmounted; then nothing left to do.
        converge(target, DEPLOY, {**data, "drive_present": False})
        assert _mounted(root, MP) is None
        assert not any("drive-mount" in c or "ocamlfuse" in c for c in _cmdlines(root).values())


@pytest.mark.skipif(not Path("/dev/fuse").exists(), reason="no /dev/fuse on this machine")
def test_drive_rclone_mounts_for_real(debian_root, tmp_path, converge, run_pyinfra):
    root = debian_root.root.path
    # Without the authorization on the controller, the deploy stops before changing anything.
    run = run_pyinfra(debian_root, DEPLOY, {"drive_auth_dir": str(tmp_path / "nowhere")})
    assert run.returncode != 0
    assert "drive_auth_dir: missing" in run.output
    assert not (root / "usr/local/lib/dlrig").exists()

    (root / "srv/fake-drive").mkdir(parents=True)
    (root / "srv/fake-drive/hello.txt").write_text("from the remote\n")
    auth, token = _auth(
        tmp_path,
        ("rclone.conf",),
        # An alias remote to a local directory, standing in for type = drive; rclone ignores
        # the token field an alias does not use, but the file carries a secret all the same.
        lambda _name, token: (
            f"[default]\ntype = alias\nremote = /srv/fake-drive\ntoken = {token}\n"
        ),
    )
    data = {"drive_backend": "rclone", "drive_auth_dir": str(auth)}
    first, second = converge(debian_root, DEPLOY, data, args=["-vvv"])
    for run in (first, second):
        assert token not in run.output
    _assert_secret_file(
        root, "/root/.config/rclone/rclone.conf", (auth / "rclone.conf").read_text()
    )
    assert _mounted(root, MP)["type"] == "fuse.rclone"
    # A real FUSE mount: reads and writes go through rclone to the "remote".
    assert debian_root.root.run(f"cat {MP}/hello.txt").stdout == "from the remote\n"
    debian_root.root.run(f"echo written > {MP}/new.txt && sync")
    debian_root.root.run(
        "for i in $(seq 40); do [ -f /srv/fake-drive/new.txt ] && exit 0; sleep 0.25; done; exit 1"
    )
    assert (root / "srv/fake-drive/new.txt").read_text() == "written\n"
    procs = " | ".join(_cmdlines(root).values())
    assert f"rclone mount default: {MP} --config /root/.config/rclone/rclone.conf" in procs

    converge(debian_root, DEPLOY, {**data, "drive_present": False})
    assert _mounted(root, MP) is None
    assert "rclone mount" not in " | ".join(_cmdlines(root).values())
