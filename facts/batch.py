"""Several facts in one round trip: one shell command on the host, each fact's own parser.

Every ``host.get_fact`` is one command over SSH (with ``_sudo``: sshd session, shell, sudo,
shell). On a fleet those round trips, not the probes themselves, dominate a no-op run, so
read-only fact sets that are always read together (preflight's) go through ``Facts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand
from pyinfra.api.exceptions import FactProcessError

# Global arguments for reading world-readable state (APT sources, dpkg's database, the
# alternatives, ld.so.conf.d, dlrig's 0644 files) as the login user: least privilege, and on
# a fleet reached with ``_sudo`` each read saves a sudo (PAM session, pty) on every host. On
# root logins (@local on Colab, @chroot) it changes nothing.
AS_LOGIN_USER: dict[str, Any] = {"_sudo": False}

_BEGIN = "@@dlrig-fact-begin"
_RC = "@@dlrig-fact-rc"
_NOCMD = "@@dlrig-fact-nocmd"


def _command_of(fact: FactBase, method: Any, kwargs: dict[str, Any]) -> str | None:
    value = method(**kwargs) if callable(method) else method
    if value is None:
        return None
    return value.get_raw_value() if isinstance(value, StringCommand) else str(value)


class Facts(FactBase[list[Any]]):
    """
    Read several facts with one command; returns their values in order.

    + facts: a sequence of ``(FactClass, kwargs)``; each fact's ``command`` (and
      ``requires_command``) runs in one shell, its stdout goes to its own ``process``. A
      missing required command gives the fact's ``default()``, as ``host.get_fact`` does; a
      fact whose command fails makes the whole read fail (the host fails, as it would).
      Not for facts whose commands carry secrets: the combined command is plain text.

    **Example:**

    .. code:: python

        gpus, driver = host.get_fact(Facts, facts=[(NvidiaGpus, {}), (NvidiaDriver, {})])
    """

    def command(self, facts: Sequence[tuple[type[FactBase], dict[str, Any]]]) -> str:
        # pyinfra calls command() then process() on the same instance: keep the facts.
        self._facts = list(facts)
        # The same instances parse the output: some facts keep state from command() (e.g.
        # FileContents' missing-file flag).
        self._instances = [cls() for cls, _ in facts]
        parts = []
        for i, (fact, (_cls, kwargs)) in enumerate(zip(self._instances, facts, strict=True)):
            command = _command_of(fact, fact.command, kwargs)
            required = _command_of(fact, fact.requires_command, kwargs)
            run = f"( {command}\n); rc=$?; echo; echo '{_RC}' $rc"
            if required:
                run = (
                    f"if command -v {required} >/dev/null 2>&1; then {run}; "
                    f"else echo '{_NOCMD}'; fi"
                )
            parts.append(f"echo '{_BEGIN} {i}'; {run}")
        return "\n".join(parts)

    def process(self, output: list[str]) -> list[Any]:
        """Split the combined output by fact and parse each part with its fact's ``process``."""
        facts = self._facts
        sections: dict[int, list[str]] = {}
        current: list[str] | None = None
        for line in output:
            if line.startswith(_BEGIN + " "):
                current = sections.setdefault(int(line.split()[1]), [])
            elif current is not None:
                current.append(line)
        values = []
        for i, (cls, _kwargs) in enumerate(facts):
            fact = self._instances[i]
            lines = sections.get(i)
            if lines is None:
                raise FactProcessError(f"no output for fact {cls.__name__}")
            if lines == [_NOCMD]:
                values.append(fact.default())
                continue
            if not lines or not lines[-1].startswith(_RC + " "):
                raise FactProcessError(f"fact {cls.__name__} did not finish")
            rc = int(lines[-1].split()[1])
            if rc != 0:
                raise FactProcessError(f"fact {cls.__name__} exited {rc}")
            body = lines[:-1]
            if body and body[-1] == "":
                body = body[:-1]  # the separating newline added after the command
            values.append(fact.process(body) if body else fact.default())
        return values


def get_facts(
    target: Any, specs: Sequence[tuple[type[FactBase], dict[str, Any]]], **global_args: Any
) -> list[Any]:
    """Read ``specs`` (``(FactClass, kwargs)`` pairs) from a host: one round trip where it runs a
    real shell; one ``get_fact`` each on pyinfra's ``@fake`` connector, whose canned responses
    are per fact command.

    + target: the pyinfra host
    + specs: the facts to read and their arguments
    + global_args: pyinfra global arguments for the read, e.g. ``**AS_LOGIN_USER``

    **Example:**

    .. code:: python

        gpus, driver = get_facts(host, [(NvidiaGpus, {}), (NvidiaDriver, {})])
    """
    from pyinfra.connectors.fake import FakeConnector

    if isinstance(target.connector, FakeConnector):
        return [target.get_fact(cls, **kwargs, **global_args) for cls, kwargs in specs]
    return target.get_fact(Facts, facts=list(specs), **global_args) or [None] * len(specs)
