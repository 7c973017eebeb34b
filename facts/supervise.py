"""Facts for running services with or without systemd."""

from __future__ import annotations

from pyinfra.api import FactBase, QuoteString, StringCommand


class SystemdBooted(FactBase[bool]):
    """
    Whether systemd is the running init (``/run/systemd/system`` exists), as sd_booted(3) tells.

    False in containers, chroots and on Colab VMs, where dlrig supervises services itself.

    .. code:: python

        True
    """

    default = bool

    def command(self) -> str:
        return "if [ -d /run/systemd/system ]; then echo yes; else echo no; fi"

    def process(self, output: list[str]) -> bool:
        return "".join(output).strip() == "yes"


class SupervisedProcess(FactBase[str | None]):
    """
    The command line of the live process whose pid is in ``pidfile``, or None.

    + pidfile: the pid file start-stop-daemon wrote for the supervisor

    .. code:: python

        "/bin/sh /usr/local/lib/dlrig/supervise /usr/local/lib/dlrig/drive-mount"
    """

    def command(self, pidfile: str) -> StringCommand:
        return StringCommand(
            "sh",
            "-c",
            QuoteString(
                'pid=$(cat "$1" 2>/dev/null) || exit 0; '
                'case "$pid" in ""|*[!0-9]*) exit 0;; esac; '
                '[ -r "/proc/$pid/cmdline" ] && tr "\\0" " " < "/proc/$pid/cmdline"; echo'
            ),
            "supervised-process",
            QuoteString(pidfile),
        )

    def process(self, output: list[str]) -> str | None:
        text = " ".join(line.strip() for line in output).strip()
        return text or None
