"""Platform facts: is this a hosted Colab VM, and a one-look summary of the machine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


class ColabDict(TypedDict):
    hosted: bool
    release_tag: str | None
    hostname_file: str | None


class SystemDict(TypedDict):
    cpu_model: str
    cpu_count: int
    mem_total_mib: int
    kernel: str
    os_id: str
    os_version: str
    os_codename: str
    disk_free_mib: dict[str, int]


# A hosted Colab VM has /var/colab/hostname; its kernels (and so `!pyinfra @local ...` run from
# a cell) carry COLAB_RELEASE_TAG, which is also in PID 1's environment of the runtime container.
# One process (grep) where nothing is found: every fork costs ~1 ms per host per run.
_COLAB_COMMAND = r"""
export LC_ALL=C
echo @hostname_file; [ ! -e /var/colab/hostname ] || cat /var/colab/hostname 2>/dev/null; echo
echo @env; [ -z "${COLAB_RELEASE_TAG+set}" ] || echo "$COLAB_RELEASE_TAG"
echo @pid1; t=$(grep -a -z -o '^COLAB_RELEASE_TAG=.*' /proc/1/environ 2>/dev/null | tr -d '\0')
[ -z "$t" ] || echo "${t#COLAB_RELEASE_TAG=}"
true
""".strip()


def parse_colab(output: list[str]) -> ColabDict:
    """Parse the sectioned output of ``ColabRuntime.command``."""
    section = ""
    values: dict[str, str] = {}
    for raw in output:
        line = raw.strip()
        if line in ("@hostname_file", "@env", "@pid1"):
            section = line[1:]
            continue
        if not line:
            continue
        if not section:
            raise FactProcessError(f"unexpected output: {line!r}")
        values.setdefault(section, line)
    tag = values.get("env") or values.get("pid1")
    hostname = values.get("hostname_file")
    return {"hosted": bool(hostname or tag), "release_tag": tag, "hostname_file": hostname}


class ColabRuntime(FactBase[ColabDict]):
    """
    Returns whether the host is a hosted Google Colab VM.

    Keys: ``hosted`` (``/var/colab/hostname`` exists or ``COLAB_RELEASE_TAG`` is set),
    ``release_tag`` (``COLAB_RELEASE_TAG``, from the environment or PID 1's) and
    ``hostname_file`` (the first line of ``/var/colab/hostname``), None where absent.

    **Example:**

    .. code:: python

        if host.get_fact(ColabRuntime)["hosted"]:
            ...
    """

    @override
    @staticmethod
    def default() -> ColabDict:
        return {"hosted": False, "release_tag": None, "hostname_file": None}

    @override
    def command(self) -> str:
        return _COLAB_COMMAND

    @override
    def process(self, output: list[str]) -> ColabDict:
        return parse_colab(output)


DEFAULT_PATHS = ("/",)

# Shell builtins where they do (each fork costs ~1 ms, on every host of a fleet, every run):
# /proc files are read with `read`, only nproc, cat and df are separate processes.
_SYSTEM_COMMAND = r"""
m=
while IFS= read -r l; do
  case $l in "model name"*) m=${l#*:}; m=${m#"${m%%[![:space:]]*}"}; break ;; esac
done < /proc/cpuinfo
echo "@cpu_model $m"
echo "@cpu_count $(nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo)"
m=
while read -r k v _; do [ "$k" = MemTotal: ] && { m=$v; break; }; done < /proc/meminfo
echo "@mem_total_kib $m"
read -r k < /proc/sys/kernel/osrelease 2>/dev/null || k=$(uname -r)
echo "@kernel $k"
echo @os_release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
""".strip()

_DF_LOOP = r"""
for p in "$@"; do
  q=$p
  while [ ! -e "$q" ]; do case $q in */*) q=${q%/*}; q=${q:-/} ;; *) q=. ;; esac; done
  LC_ALL=C df -Pk -- "$q" 2>/dev/null | { read -r _; read -r _ _ _ a _; echo "@df $a $p"; }
done
true
""".strip()


def parse_system(output: list[str]) -> SystemDict:
    """Parse the sectioned output of ``SystemSummary.command``."""
    result: SystemDict = {
        "cpu_model": "",
        "cpu_count": 0,
        "mem_total_mib": 0,
        "kernel": "",
        "os_id": "",
        "os_version": "",
        "os_codename": "",
        "disk_free_mib": {},
    }
    in_os_release = False
    os_release: dict[str, str] = {}
    for raw in output:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        if (line.startswith("@") and not in_os_release) or line.startswith("@df "):
            key, _, value = line.partition(" ")
            value = value.strip()
            in_os_release = False
            try:
                if key == "@cpu_model":
                    result["cpu_model"] = value
                elif key == "@cpu_count":
                    result["cpu_count"] = int(value)
                elif key == "@mem_total_kib":
                    result["mem_total_mib"] = int(value) // 1024
                elif key == "@kernel":
                    result["kernel"] = value
                elif key == "@os_release":
                    in_os_release = True
                elif key == "@df":
                    free, _, path = value.partition(" ")
                    if free:
                        result["disk_free_mib"][path] = int(free) // 1024
                else:
                    raise ValueError(key)
            except ValueError as e:
                raise FactProcessError(f"unexpected system summary line: {line!r}") from e
        elif in_os_release:
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                os_release[key.strip()] = value.strip().strip("\"'")
        else:
            raise FactProcessError(f"unexpected system summary line: {line!r}")
    result["os_id"] = os_release.get("ID", "")
    result["os_version"] = os_release.get("VERSION_ID", "")
    codename = os_release.get("VERSION_CODENAME") or os_release.get("UBUNTU_CODENAME", "")
    result["os_codename"] = codename
    return result


class SystemSummary(FactBase[SystemDict]):
    """
    Returns a summary of the machine: CPU, memory, kernel, OS and free disk space.

    + paths: directories whose free space to report (a missing one reports its nearest existing
      parent), default ``("/",)``

    Keys: ``cpu_model``, ``cpu_count`` (usable CPUs), ``mem_total_mib``, ``kernel``,
    ``os_id`` (``"debian"``), ``os_version`` (``"12"``), ``os_codename`` (``"bookworm"``) and
    ``disk_free_mib`` (path → MiB free for unprivileged users).

    **Example:**

    .. code:: python

        summary = host.get_fact(SystemSummary, paths=["/", "/opt/dlrig"])
    """

    @override
    def command(self, paths: Sequence[str] = DEFAULT_PATHS) -> StringCommand:
        if isinstance(paths, str):
            paths = [paths]
        return StringCommand(
            _SYSTEM_COMMAND, "\nset --", *(QuoteString(p) for p in paths), "\n" + _DF_LOOP
        )

    @override
    def process(self, output: list[str]) -> SystemDict:
        return parse_system(output)
