"""Google Drive over FUSE: google-drive-ocamlfuse (PPA) or rclone, authorized, mounted, supervised.

Authorization: Google retired the out-of-band ("-headless" verification code) flow the old Colab
recipes use. Authorize once on a machine with a browser (``google-drive-ocamlfuse -label L``, or
``rclone config``), then give dlrig the resulting files: they are uploaded mode 0600 into the
drive user's home and never appear in a command line or in pyinfra's output.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, QuoteString, StringCommand, deploy, operation
from pyinfra.api.command import FileUploadCommand
from pyinfra.facts.files import File, FileContents
from pyinfra.facts.server import LinuxDistribution, Mounts, Users
from pyinfra.facts.systemd import SystemdEnabled, SystemdStatus
from pyinfra.operations import apt, files, systemd
from pyinfra.operations.util import any_changed

from deploys import apt_packages
from deploys.apt_sources import keyring
from deploys.lib import data
from deploys.lib.apt_text import parse_repo
from deploys.lib.drive import (
    AUTH_FILES,
    LIB_DIR,
    LOGFILE,
    PIDFILE,
    RUNNER,
    SUPERVISE,
    SUPERVISE_SCRIPT,
    UNIT,
    Drive,
    check,
    default_auth_dir,
    ppa_repo,
    ppa_suite,
    render_runner,
    render_unit,
)
from facts.supervise import SupervisedProcess, SystemdBooted

PREFIX = "drive_"

# The PPA's signing key: "Launchpad PPA for Alessandro Strada". Upstream's install notes give
# its long id AD5F235DF639B041 (github.com/astrada/google-drive-ocamlfuse/wiki/Installation);
# this is the full fingerprint ending in it. The keyring step refuses any other key.
PPA_FINGERPRINT = "9EA4D6FCA5D37A5D1CA9C09AAD5F235DF639B041"

DEFAULTS: dict[str, Any] = {
    "drive_present": True,
    "drive_backend": "ocamlfuse",
    "drive_mount_point": "/mnt/drive",
    "drive_user": "root",
    "drive_label": "default",
    "drive_auth_dir": "",
    "drive_allow_other": False,
    "drive_supervisor": "auto",
    "drive_install": "apt",
    "drive_fuse_package": "fuse3",
    "drive_mount_timeout": 60,
    "drive_ppa": {
        "uri": "https://ppa.launchpadcontent.net/alessandro-strada/ppa/ubuntu",
        "suite": "",
        "components": ["main"],
        "key_url": (
            f"https://keyserver.ubuntu.com/pks/lookup?op=get&options=mr&search=0x{PPA_FINGERPRINT}"
        ),
        "fingerprint": PPA_FINGERPRINT,
    },
    "drive_ppa_ubuntu_for_debian": {"bullseye": "focal", "bookworm": "jammy", "trixie": "noble"},
}

DOCS: dict[str, str] = {
    "drive_present": "Mount Drive (True) or stop the mount and its supervisor (False).",
    "drive_backend": "ocamlfuse (google-drive-ocamlfuse from the PPA) or rclone (distro package).",
    "drive_mount_point": "Absolute directory Drive is mounted at (Colab's habit: /content/drive).",
    "drive_user": "Existing user that owns the mount and the authorization files.",
    "drive_label": "ocamlfuse -label (~/.gdfuse/<label>) or the rclone remote name.",
    "drive_auth_dir": (
        "Controller-side directory with the authorization made on a machine with a browser: "
        "ocamlfuse config + state; rclone rclone.conf. Empty: ~/.gdfuse/<label> or "
        "~/.config/rclone. Uploaded 0600, never shown."
    ),
    "drive_allow_other": "Let other users see the mount (-o allow_other; user_allow_other set).",
    "drive_supervisor": (
        "auto (systemd unit when systemd runs, else a supervised background process), "
        "systemd, or process."
    ),
    "drive_install": (
        "apt: ocamlfuse from drive_ppa, rclone from the distribution; none: the binary is "
        "already there (e.g. built with opam)."
    ),
    "drive_fuse_package": "FUSE package to install (fuse3; fuse on releases that lack it).",
    "drive_mount_timeout": "Seconds to wait for the mount to appear before failing.",
    "drive_ppa": (
        "The google-drive-ocamlfuse PPA: {uri, suite ('' = this Ubuntu's codename or the mapped "
        "Ubuntu base on Debian), components, key_url or key_file, fingerprint (pinned)}."
    ),
    "drive_ppa_ubuntu_for_debian": (
        "Debian codename -> Ubuntu codename whose PPA builds match its libraries (glibc)."
    ),
}


def _sha256_file(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@operation()
def secret_file(src: str, dest: str, user: str, group: str, staging_dir: str | None = None):
    """
    Upload a secret file mode 0600; later runs leave it alone unless the controller's copy changed.

    The backends rewrite their files (refreshed tokens), so "differs from the controller" is
    not "must upload": the sha256 of the controller-side file last uploaded is recorded next
    to ``dest`` (``.<name>.dlrig-source-sha256``, a hash, not the secret) and compared instead.
    The file is created empty with mode 0600 first, then filled: it is never readable by
    others, and its contents never travel through a command line or output.

    + src: the file on the controller
    + dest: where it goes on the host
    + user: owner on the host
    + group: group on the host
    + staging_dir: with SSH + sudo, the 0700 directory of the login user that pyinfra stages
      the upload in (instead of the shared temporary directory)

    **Example:**

    .. code:: python

        secret_file(
            src=os.path.expanduser("~/.gdfuse/default/state"),
            dest="/root/.gdfuse/default/state",
            user="root",
            group="root",
        )
    """
    digest = _sha256_file(src)
    parent, base = posixpath.split(dest)
    marker = posixpath.join(parent, f".{base}.dlrig-source-sha256")
    info = host.get_fact(File, path=dest)
    recorded = host.get_fact(FileContents, path=marker)
    if info and recorded == [digest]:
        if info["mode"] == 600 and info["user"] == user and info["group"] == group:
            host.noop(f"{dest} was seeded from this copy of {os.path.basename(src)}")
            return
        yield StringCommand("chown", QuoteString(f"{user}:{group}"), QuoteString(dest))
        yield StringCommand("chmod", "600", QuoteString(dest))
        return
    yield StringCommand(
        "install", "-m", "600", "-o", QuoteString(user), "-g", QuoteString(group),
        "/dev/null", QuoteString(dest),
    )  # fmt: skip
    temp = posixpath.join(staging_dir, f"{base}.upload") if staging_dir else None
    yield FileUploadCommand(src, dest, remote_temp_filename=temp)
    yield from files.put._inner(
        src=io.StringIO(f"{digest}\n"), dest=marker, user=user, group=group, mode="600"
    )


def _mounted_check(mount_point: str, timeout: int, log_hint: str) -> StringCommand:
    script = (
        "i=0; while ! awk -v mp=\"$1\" '$5 == mp {f=1} END {exit !f}' /proc/self/mountinfo; do "
        'i=$((i+1)); if [ "$i" -gt "$(($2 * 2))" ]; then '
        'echo "Drive is not mounted at $1 after $2 s; last log lines:" >&2; '
        'sh -c "$3" >&2; exit 1; fi; sleep 0.5; done'
    )
    return StringCommand(
        "sh", "-c", QuoteString(script), "wait-mount",
        QuoteString(mount_point), str(timeout), QuoteString(log_hint),
    )  # fmt: skip


def _umount_if_mounted(mount_point: str) -> StringCommand:
    script = (
        "if awk -v mp=\"$1\" '$5 == mp {f=1} END {exit !f}' /proc/self/mountinfo; then "
        'umount "$1" 2>/dev/null || umount -l "$1"; fi'
    )
    return StringCommand("sh", "-c", QuoteString(script), "umount", QuoteString(mount_point))


@operation()
def mount(
    mount_point: str,
    user: str,
    supervisor: str,
    present: bool = True,
    restart: bool = False,
    timeout: int = 60,
):
    """
    Keep Drive mounted at ``mount_point`` by a supervised runner (or unmount it).

    Reads the mounts fact and the supervisor's state: mounted and running → nothing to do.
    Otherwise (or with ``restart``) it stops the runner, clears a stale mount, (re)starts it and
    waits for the mount to appear, failing with the runner's last log lines if it does not.

    + mount_point: absolute directory
    + user: the user the runner runs as (owner of the mount point)
    + supervisor: ``systemd`` (unit ``dlrig-drive.service``) or ``process`` (start-stop-daemon
      running dlrig's supervise script, pid in ``/run/dlrig-drive.pid``, log in
      ``/var/log/dlrig-drive.log``)
    + present: False stops the runner and unmounts
    + restart: restart even when mounted (the runner, unit or authorization changed)
    + timeout: seconds to wait for the mount

    **Example:**

    .. code:: python

        mount(mount_point="/mnt/drive", user="root", supervisor="process")
    """
    is_mounted = mount_point in host.get_fact(Mounts)
    if supervisor == "systemd":
        running = bool(host.get_fact(SystemdStatus).get(UNIT))
        enabled = bool(host.get_fact(SystemdEnabled).get(UNIT))
        start = StringCommand("systemctl", "restart", UNIT)
        stop = StringCommand("systemctl", "stop", UNIT)
        log_hint = f"journalctl -u {UNIT} -n 20 --no-pager"
    else:
        running = host.get_fact(SupervisedProcess, pidfile=PIDFILE) is not None
        enabled = True
        start = StringCommand(
            "start-stop-daemon", "--start", "--background", "--make-pidfile",
            "--pidfile", PIDFILE, "--chuid", QuoteString(user), "--output", LOGFILE,
            "--startas", "/bin/sh", "--", SUPERVISE, RUNNER,
        )  # fmt: skip
        stop = StringCommand(
            "start-stop-daemon", "--stop", "--pidfile", PIDFILE, "--remove-pidfile",
            "--retry", "TERM/15/KILL/5", "--oknodo",
        )  # fmt: skip
        log_hint = f"tail -n 20 {LOGFILE}"

    if not present:
        if not running and not is_mounted and not (supervisor == "systemd" and enabled):
            host.noop(f"Drive is not mounted at {mount_point}")
            return
        if supervisor == "systemd" and enabled:
            yield StringCommand("systemctl", "disable", UNIT)
        if running:
            yield stop
        yield _umount_if_mounted(mount_point)
        return

    if is_mounted and running and enabled and not restart:
        host.noop(f"Drive is mounted at {mount_point}")
        return
    if supervisor == "systemd" and not enabled:
        yield StringCommand("systemctl", "enable", UNIT)
    if running:
        yield stop
    yield _umount_if_mounted(mount_point)
    yield StringCommand(
        "install", "-d", "-m", "755", "-o", QuoteString(user), QuoteString(mount_point)
    )
    if supervisor == "process":
        yield StringCommand("install", "-m", "640", "-o", QuoteString(user), "/dev/null", LOGFILE)
    yield start
    yield _mounted_check(mount_point, timeout, log_hint)


def _fail(message: str) -> DeployError:
    return DeployError(f"{host.name}: {message}")


def _drive() -> Drive:
    users = host.get_fact(Users)
    user = host.data.drive_user
    home = users.get(user, {}).get("home") if isinstance(user, str) else None
    try:
        return check({k: host.data.get(k) for k in DEFAULTS}, home)
    except ValueError as e:
        raise _fail(str(e)) from None


def _auth_sources(drive: Drive) -> dict[str, str]:
    auth_dir = host.data.drive_auth_dir or default_auth_dir(drive.backend, drive.label)
    auth_dir = os.path.expanduser(auth_dir)
    sources = {name: os.path.join(auth_dir, name) for name in AUTH_FILES[drive.backend]}
    missing = [path for path in sources.values() if not os.path.isfile(path)]
    if missing:
        raise _fail(
            f"drive_auth_dir: missing {missing} on the controller. Authorize on a machine with "
            "a browser (google-drive-ocamlfuse -label <label>, or rclone config) and point "
            "drive_auth_dir at the directory holding the files"
        )
    return sources


def _install_ocamlfuse() -> list:
    distro = host.get_fact(LinuxDistribution)
    meta = distro.get("release_meta") or {}
    codename = meta.get("UBUNTU_CODENAME") or meta.get("VERSION_CODENAME") or ""
    ppa = host.data.drive_ppa
    try:
        suite = ppa_suite(
            str(ppa.get("suite") or "") if isinstance(ppa, dict) else "",
            str(distro.get("name") or ""),
            codename,
            host.data.drive_ppa_ubuntu_for_debian,
        )
        repo = parse_repo(0, ppa_repo(ppa, suite))
    except ValueError as e:
        raise _fail(f"drive_ppa: {str(e).replace('apt_sources_repos[0] ', '')}") from None
    apt_packages.present(
        name="Install the tools that fetch and check repository keys",
        packages=["gpg", "curl", "ca-certificates"],
        cache_time=86400,
    )
    key = keyring(
        name="Install the google-drive-ocamlfuse PPA keyring",
        dest=repo.keyring,
        fingerprint=repo.fingerprint,
        key_url=repo.key_url,
        key_file=repo.key_file,
    )
    source = apt.sources_file(
        name=f"Add the google-drive-ocamlfuse PPA ({suite})",
        filename=repo.sources_filename,
        types=["deb"],
        uris=[repo.uri],
        suites=list(repo.suites),
        components=list(repo.components),
        signed_by=repo.keyring,
    )
    apt.update(name="Update APT lists (PPA added)", _if=any_changed(key, source))
    return ["google-drive-ocamlfuse"]


@deploy("Mount Google Drive", data_defaults=DEFAULTS)
def drive() -> None:
    """
    Install a Drive FUSE client, upload its authorization, and keep Drive mounted.

    Data keys (see README): ``drive_backend`` (``ocamlfuse`` from the alessandro-strada PPA,
    keyring pinned by fingerprint, or ``rclone`` from the distribution), ``drive_mount_point``,
    ``drive_user``, ``drive_label``, ``drive_auth_dir``, ``drive_allow_other``,
    ``drive_supervisor``, ``drive_present`` and the rest. On Debian the PPA is used through
    the Ubuntu release with matching libraries (``drive_ppa_ubuntu_for_debian``); elsewhere
    build with opam and set ``drive_install: none``. The mount runs under systemd where systemd
    is init, otherwise under dlrig's supervise script started by start-stop-daemon (Colab VMs,
    containers). A changed runner, unit or authorization restarts it.

    **Example:**

    .. code:: python

        from deploys.drive import drive

        drive()
    """
    data.check_host_data(host, DEFAULTS)
    drive_ = _drive()
    supervisor = host.data.drive_supervisor
    if supervisor == "auto":
        supervisor = "systemd" if host.get_fact(SystemdBooted) else "process"

    if not host.data.drive_present:
        mount(
            name=f"Unmount Drive at {drive_.mount_point}",
            mount_point=drive_.mount_point,
            user=drive_.user,
            supervisor=supervisor,
            present=False,
        )
        files.file(name="Remove the Drive systemd unit", path=f"/etc/systemd/system/{UNIT}",
                   present=False)  # fmt: skip
        return

    sources = _auth_sources(drive_)
    packages = [host.data.drive_fuse_package]
    if host.data.drive_install == "apt":
        if drive_.backend == "ocamlfuse":
            packages += _install_ocamlfuse()
        else:
            packages.append("rclone")
    apt_packages.present(
        name=f"Install {' and '.join(packages)}",
        packages=packages,
        cache_time=86400,
    )
    if drive_.allow_other:
        files.line(
            name="Allow FUSE mounts visible to other users (user_allow_other)",
            path="/etc/fuse.conf",
            line=r"^#?\s*user_allow_other\s*$",
            replace="user_allow_other",
        )

    group = host.get_fact(Users)[drive_.user]["group"]
    changes = [
        files.directory(
            name=f"Directory for the {drive_.backend} authorization",
            path=drive_.auth_dir,
            user=drive_.user,
            group=group,
            mode="700",
        )
    ]
    staging = None
    login = host.data.get("ssh_user")
    if login and host.data.get("_sudo"):
        staging = f"/var/lib/dlrig/staging-{login}"
        files.directory(
            name="Private staging directory for secret uploads",
            path=staging,
            user=login,
            mode="700",
        )
    for name, src in sources.items():
        changes.append(
            secret_file(
                name=f"Upload the {drive_.backend} authorization file {name} (0600)",
                src=src,
                dest=posixpath.join(drive_.auth_dir, name),
                user=drive_.user,
                group=group,
                staging_dir=staging,
            )
        )

    files.put(
        name="Install dlrig's supervise script",
        src=io.StringIO(SUPERVISE_SCRIPT),
        dest=SUPERVISE,
        mode="755",
        create_remote_dir=True,
    )
    changes.append(
        files.put(
            name="Install the Drive mount runner",
            src=io.StringIO(render_runner(drive_)),
            dest=RUNNER,
            mode="755",
        )
    )
    if supervisor == "systemd":
        unit = files.put(
            name="Install the Drive systemd unit",
            src=io.StringIO(render_unit(drive_)),
            dest=f"/etc/systemd/system/{UNIT}",
            mode="644",
        )
        changes.append(unit)
        systemd.daemon_reload(name="Reload systemd (Drive unit changed)", _if=unit.did_change)

    mount(
        name=f"Mount Drive at {drive_.mount_point}",
        mount_point=drive_.mount_point,
        user=drive_.user,
        supervisor=supervisor,
        restart=any(op.will_change for op in changes),
        timeout=host.data.drive_mount_timeout,
    )


__all__ = ["LIB_DIR", "drive", "mount", "secret_file"]
