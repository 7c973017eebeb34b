"""Pure logic for Google Drive over FUSE: data checks, the mount command, unit and runner text.

No pyinfra here. Two backends share one data shape:

+ ``ocamlfuse``: ``google-drive-ocamlfuse -label <label> -f <mount point>``; its authorization
  lives in ``~/.gdfuse/<label>/{config,state}`` (made on a machine with a browser, copied).
+ ``rclone``: ``rclone mount <label>: <mount point> --config ~/.config/rclone/rclone.conf``;
  its authorization is the remote ``[<label>]`` in ``rclone.conf`` (``rclone config`` made it).

Both run in the foreground under a supervisor (a systemd unit, or dlrig's supervise script where
there is no systemd) and unmount on SIGTERM.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

BACKENDS = ("ocamlfuse", "rclone")
SUPERVISORS = ("auto", "systemd", "process")
INSTALLS = ("apt", "none")
LIB_DIR = "/usr/local/lib/dlrig"
RUNNER = f"{LIB_DIR}/drive-mount"
SUPERVISE = f"{LIB_DIR}/supervise"
UNIT = "dlrig-drive.service"
PIDFILE = "/run/dlrig-drive.pid"
LOGFILE = "/var/log/dlrig-drive.log"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_USER = re.compile(r"^[a-z_][a-z0-9_.-]*\$?$")
_CODENAME = re.compile(r"^[a-z]+$")
_PPA_KEYS = {"uri", "suite", "components", "key_url", "key_file", "fingerprint"}

# Files each backend needs from the controller, and where they go under the user's home.
AUTH_FILES: dict[str, tuple[str, ...]] = {
    "ocamlfuse": ("config", "state"),
    "rclone": ("rclone.conf",),
}


@dataclass(frozen=True)
class Drive:
    """Checked drive settings for one host."""

    backend: str
    label: str
    mount_point: str
    user: str
    home: str
    allow_other: bool = False

    @property
    def auth_dir(self) -> str:
        """Where the backend reads its authorization on the target."""
        if self.backend == "ocamlfuse":
            return posixpath.join(self.home, ".gdfuse", self.label)
        return posixpath.join(self.home, ".config", "rclone")

    @property
    def fs_type(self) -> str:
        return "fuse.google-drive-ocamlfuse" if self.backend == "ocamlfuse" else "fuse.rclone"

    def argv(self) -> list[str]:
        """The mount command (foreground: the supervisor owns the process)."""
        if self.backend == "ocamlfuse":
            argv = ["google-drive-ocamlfuse", "-label", self.label, "-f"]
            if self.allow_other:
                argv += ["-o", "allow_other"]
            return [*argv, self.mount_point]
        argv = [
            "rclone",
            "mount",
            f"{self.label}:",
            self.mount_point,
            "--config",
            posixpath.join(self.auth_dir, "rclone.conf"),
            "--vfs-cache-mode",
            "writes",
        ]
        if self.allow_other:
            argv.append("--allow-other")
        return argv


def default_auth_dir(backend: str, label: str) -> str:
    """The controller-side directory the authorization files are read from by default."""
    return f"~/.gdfuse/{label}" if backend == "ocamlfuse" else "~/.config/rclone"


def check(data: Mapping[str, Any], home: str | None) -> Drive:
    """Check the drive data keys; raise ValueError naming the key.

    + data: the host's data (``drive_*`` keys)
    + home: the home directory of ``drive_user`` on the host (None: no such user)
    """
    backend = data["drive_backend"]
    if backend not in BACKENDS:
        raise ValueError(f"drive_backend must be one of {list(BACKENDS)}, not {backend!r}")
    if data["drive_supervisor"] not in SUPERVISORS:
        raise ValueError(f"drive_supervisor must be one of {list(SUPERVISORS)}")
    if data["drive_install"] not in INSTALLS:
        raise ValueError(f"drive_install must be one of {list(INSTALLS)}")
    label = data["drive_label"]
    if not _LABEL.match(label):
        raise ValueError(f"drive_label must match {_LABEL.pattern}, not {label!r}")
    mount_point = data["drive_mount_point"]
    if (
        not mount_point.startswith("/")
        or posixpath.normpath(mount_point) != mount_point
        or mount_point == "/"
        or any(c.isspace() for c in mount_point)
    ):
        raise ValueError(
            f"drive_mount_point must be a normalised absolute path without spaces, "
            f"not {mount_point!r}"
        )
    user = data["drive_user"]
    if not _USER.match(user):
        raise ValueError(f"drive_user {user!r} is not a valid user name")
    if home is None:
        raise ValueError(f"drive_user {user!r} does not exist on the host")
    return Drive(
        backend=backend,
        label=label,
        mount_point=mount_point,
        user=user,
        home=home,
        allow_other=bool(data["drive_allow_other"]),
    )


def ppa_suite(
    explicit: str, distro: str, codename: str, ubuntu_for_debian: Mapping[str, str]
) -> str:
    """The PPA suite for a host: ``explicit`` if given, Ubuntu's own codename, or the Ubuntu
    release a Debian release maps to (``drive_ppa_ubuntu_for_debian``)."""
    if explicit:
        return explicit
    distro = distro.lower()
    if distro == "ubuntu":
        if not _CODENAME.match(codename):
            raise ValueError(f"cannot tell this Ubuntu's codename (got {codename!r})")
        return codename
    if distro == "debian":
        if codename not in ubuntu_for_debian:
            raise ValueError(
                f"Debian {codename!r} has no Ubuntu base in drive_ppa_ubuntu_for_debian "
                f"(known: {sorted(ubuntu_for_debian)}); add one, set drive_ppa.suite, or use "
                "drive_install: none with a binary built by opam"
            )
        return ubuntu_for_debian[codename]
    raise ValueError(
        f"the PPA serves Ubuntu (and Debian through its Ubuntu base), not {distro!r}; "
        "use drive_install: none with a binary built by opam"
    )


def ppa_repo(raw: Any, suite: str) -> dict[str, Any]:
    """An ``apt_sources_repos``-shaped entry for the PPA (checked by apt_text.parse_repo)."""
    if not isinstance(raw, Mapping):
        raise ValueError("drive_ppa must be a mapping")
    extra = sorted(set(raw) - _PPA_KEYS)
    if extra:
        raise ValueError(f"drive_ppa has unknown field(s) {extra}; known: {sorted(_PPA_KEYS)}")
    entry = {
        "name": "google-drive-ocamlfuse",
        "uri": raw.get("uri"),
        "suites": [suite],
        "components": raw.get("components") or ["main"],
        "fingerprint": raw.get("fingerprint"),
    }
    for key in ("key_url", "key_file"):
        if raw.get(key):
            entry[key] = raw[key]
    return entry


def render_runner(drive: Drive) -> str:
    """The script both supervisors run: the mount command in the foreground, as drive_user."""
    return (
        "#!/bin/sh\n"
        f"# Managed by dlrig: Google Drive ({drive.backend}) at {drive.mount_point}.\n"
        "# Runs in the foreground; SIGTERM unmounts. Changes are overwritten.\n"
        f"export HOME={shlex.quote(drive.home)}\n"
        f"exec {shlex.join(drive.argv())}\n"
    )


def render_unit(drive: Drive) -> str:
    """The systemd unit for servers."""
    mp = shlex.quote(drive.mount_point)
    return (
        "# Managed by dlrig; changes are overwritten.\n"
        "[Unit]\n"
        f"Description=Google Drive ({drive.backend}) at {drive.mount_point} (dlrig)\n"
        "Wants=network-online.target\n"
        "After=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"User={drive.user}\n"
        f"ExecStart={RUNNER}\n"
        f"ExecStopPost=-/bin/sh -c 'fusermount3 -uz {mp} 2>/dev/null || fusermount -uz {mp}'\n"
        "Restart=on-failure\n"
        "RestartSec=10\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


SUPERVISE_SCRIPT = """#!/bin/sh
# Managed by dlrig: keep "$@" running where there is no systemd (Colab VM, containers, chroots).
# Runs the command in the background of this shell and restarts it 2 s after it exits;
# SIGTERM/SIGINT stop the command (it unmounts on SIGTERM) and then this supervisor.
child=
stop() {
  trap - TERM INT
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null && wait "$child"
  exit 0
}
trap stop TERM INT
while :; do
  "$@" &
  child=$!
  wait "$child"
  status=$?
  child=
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) dlrig supervise: $1 exited ($status); restart in 2 s" >&2
  sleep 2 &
  wait $!
done
"""
