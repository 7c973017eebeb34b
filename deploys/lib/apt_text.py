"""Pure text logic for APT sources: enabling deb-src and checking third-party repo data.

No pyinfra here: every function maps text or data to text or errors, so it is unit-tested alone.
Both functions that rewrite a file are idempotent: applying one to its own output changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_ONE_LINE = re.compile(
    r"^(?P<comment>\s*#\s*)?(?P<type>deb|deb-src)\s+"
    r"(?:\[(?P<options>[^\]]*)\]\s+)?"
    r"(?P<uri>\S+)\s+(?P<suite>\S+)(?P<components>(?:\s+[^\s#]+)*)\s*(?:#.*)?$"
)


@dataclass(frozen=True)
class OneLineEntry:
    """One ``deb``/``deb-src`` line of a one-line-style sources file."""

    commented: bool
    type: str
    options: str | None
    uri: str
    suite: str
    components: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.uri.rstrip("/"), self.suite, self.components)

    def render(self, type_: str) -> str:
        options = f" [{self.options.strip()}]" if self.options and self.options.strip() else ""
        components = "".join(f" {c}" for c in self.components)
        return f"{type_}{options} {self.uri} {self.suite}{components}"


def parse_one_line(line: str) -> OneLineEntry | None:
    """Parse a ``deb``/``deb-src`` line (commented or not); None for anything else."""
    match = _ONE_LINE.match(line)
    if not match:
        return None
    return OneLineEntry(
        commented=bool(match["comment"]),
        type=match["type"],
        options=match["options"],
        uri=match["uri"],
        suite=match["suite"],
        components=tuple(match["components"].split()),
    )


def enable_deb_src_one_line(text: str) -> str:
    """Give every active ``deb`` line of a ``sources.list`` a matching active ``deb-src`` line.

    A commented ``# deb-src`` line for the same URI, suite and components is uncommented in place;
    otherwise a ``deb-src`` line is added right after the ``deb`` line, with the same options.
    """
    lines = text.splitlines()
    entries = [parse_one_line(line) for line in lines]
    active_src = {e.key for e in entries if e and not e.commented and e.type == "deb-src"}
    commented_src = {
        e.key: i for i, e in enumerate(entries) if e and e.commented and e.type == "deb-src"
    }

    out: list[str] = list(lines)
    inserts: dict[int, list[str]] = {}
    for i, entry in enumerate(entries):
        if not entry or entry.commented or entry.type != "deb" or entry.key in active_src:
            continue
        if entry.key in commented_src:
            j = commented_src.pop(entry.key)
            out[j] = re.sub(r"^\s*#\s*", "", lines[j])
        else:
            inserts.setdefault(i, []).append(entry.render("deb-src"))
        active_src.add(entry.key)

    result: list[str] = []
    for i, line in enumerate(out):
        result.append(line)
        result.extend(inserts.get(i, []))
    new = "\n".join(result)
    if text.endswith("\n") or (result and not text):
        new += "\n"
    return new


def _stanzas(lines: list[str]) -> list[tuple[int, int]]:
    """Return (start, end) line ranges of deb822 stanzas (blank lines separate them)."""
    ranges = []
    start = None
    for i, line in enumerate(lines):
        if line.strip():
            if start is None:
                start = i
        elif start is not None:
            ranges.append((start, i))
            start = None
    if start is not None:
        ranges.append((start, len(lines)))
    return ranges


def _field(line: str) -> tuple[str, str] | None:
    if line.startswith(("#", " ", "\t")) or ":" not in line:
        return None
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def enable_deb_src_deb822(text: str) -> str:
    """Turn ``Types: deb`` into ``Types: deb deb-src`` in every enabled deb822 stanza."""
    lines = text.splitlines()
    for start, end in _stanzas(lines):
        fields = {}
        for i in range(start, end):
            parsed = _field(lines[i])
            if parsed:
                fields[parsed[0]] = (i, parsed[1])
        if "types" not in fields:
            continue
        if fields.get("enabled", (0, "yes"))[1].lower() in ("no", "false", "0"):
            continue
        index, value = fields["types"]
        types = value.split()
        if "deb" in types and "deb-src" not in types:
            name = lines[index].partition(":")[0]
            lines[index] = f"{name}: {' '.join([*types, 'deb-src'])}"
    new = "\n".join(lines)
    if text.endswith("\n"):
        new += "\n"
    return new


def enable_deb_src(path: str, text: str) -> str:
    """Enable deb-src in a sources file, picking the format from the file name."""
    if path.endswith(".sources"):
        return enable_deb_src_deb822(text)
    return enable_deb_src_one_line(text)


_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SUITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~/-]*$")
_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+/-]*$")
_URI = re.compile(r"^(https?|file)://\S+$")
_FINGERPRINT = re.compile(r"^[0-9A-F]{40}$")
_REPO_KEYS = {
    "name",
    "uri",
    "suites",
    "components",
    "key_url",
    "key_file",
    "fingerprint",
    "architectures",
    "deb_src",
}


@dataclass(frozen=True)
class Repo:
    """A checked third-party APT repository from ``apt_sources_repos``."""

    name: str
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    fingerprint: str
    key_url: str | None = None
    key_file: str | None = None
    architectures: tuple[str, ...] = ()
    deb_src: bool = False

    @property
    def keyring(self) -> str:
        return f"/etc/apt/keyrings/dlrig-{self.name}.gpg"

    @property
    def sources_filename(self) -> str:
        """Base name of the deb822 file under ``/etc/apt/sources.list.d/``."""
        return f"dlrig-{self.name}"


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    return tuple(str(v) for v in value)


def normalise_fingerprint(value: str) -> str:
    """Upper-case a fingerprint and drop spaces (as ``gpg`` prints it grouped)."""
    return re.sub(r"\s+", "", value).upper().removeprefix("0X")


def parse_repo(index: int, raw: Mapping[str, Any]) -> Repo:
    """Check one ``apt_sources_repos`` entry; raise ValueError naming the bad field."""
    where = f"apt_sources_repos[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(raw).__name__}")
    extra = sorted(set(raw) - _REPO_KEYS)
    if extra:
        raise ValueError(f"{where} has unknown field(s) {extra}; known: {sorted(_REPO_KEYS)}")
    name = str(raw.get("name", ""))
    where = f"apt_sources_repos[{index}] ({name or 'unnamed'})"
    if not _NAME.match(name):
        raise ValueError(f"{where}: 'name' must match {_NAME.pattern}")
    uri = str(raw.get("uri", ""))
    if not _URI.match(uri):
        raise ValueError(f"{where}: 'uri' must be an http(s):// or file:// URL, got {uri!r}")
    suites = _as_tuple(raw.get("suites"))
    if not suites:
        raise ValueError(f"{where}: 'suites' is required")
    for suite in suites:
        if not _SUITE.match(suite):
            raise ValueError(f"{where}: malformed suite {suite!r}")
    components = _as_tuple(raw.get("components"))
    flat = [s for s in suites if s.endswith("/")]
    if flat and components:
        raise ValueError(f"{where}: flat suite {flat[0]!r} takes no components")
    if not flat and not components:
        raise ValueError(f"{where}: 'components' is required for suite {suites[0]!r}")
    for component in components:
        if not _COMPONENT.match(component):
            raise ValueError(f"{where}: malformed component {component!r}")
    key_url = raw.get("key_url")
    key_file = raw.get("key_file")
    if bool(key_url) == bool(key_file):
        raise ValueError(f"{where}: give exactly one of 'key_url' or 'key_file' (its keyring)")
    if key_url and not _URI.match(str(key_url)):
        raise ValueError(f"{where}: 'key_url' must be an http(s):// or file:// URL")
    fingerprint = normalise_fingerprint(str(raw.get("fingerprint") or ""))
    if not _FINGERPRINT.match(fingerprint):
        raise ValueError(
            f"{where}: 'fingerprint' must be the keyring's full 40-hex-digit fingerprint"
        )
    return Repo(
        name=name,
        uri=uri,
        suites=suites,
        components=components,
        fingerprint=fingerprint,
        key_url=str(key_url) if key_url else None,
        key_file=str(key_file) if key_file else None,
        architectures=_as_tuple(raw.get("architectures")),
        deb_src=bool(raw.get("deb_src", False)),
    )


def parse_repos(raw: Any) -> list[Repo]:
    """Check the whole ``apt_sources_repos`` list; names must be unique."""
    if raw is None:
        return []
    if not isinstance(raw, list | tuple):
        raise ValueError(f"apt_sources_repos must be a list, got {type(raw).__name__}")
    repos = [parse_repo(i, r) for i, r in enumerate(raw)]
    names = [r.name for r in repos]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"apt_sources_repos: duplicate name(s) {dupes}")
    return repos


def keyring_fingerprints(colons_output: list[str]) -> list[str]:
    """Primary-key fingerprints from ``gpg --show-keys --with-colons`` output."""
    fingerprints = []
    expect_fpr = False
    for line in colons_output:
        fields = line.split(":")
        if fields[0] == "pub":
            expect_fpr = True
        elif fields[0] == "fpr" and expect_fpr and len(fields) > 9:
            fingerprints.append(fields[9].upper())
            expect_fpr = False
        elif fields[0] in ("sub", "uid"):
            expect_fpr = False
    return fingerprints
