"""Pure logic for checksummed dataset downloads: checking ``datasets_items`` and markers.

No pyinfra here. A dataset is recorded as done by a marker file next to its destination
(``<parent>/.<basename>.dlrig-dataset``), written as the very last step of a download, holding
the verified sha256 and the extraction kind. The marker travels with the data (a destination on
the Drive mount keeps its marker), and a changed sha256 or extraction kind means "not done".
"""

from __future__ import annotations

import itertools
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EXTRACT_KINDS = ("zip", "tar", "gz", "none")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_URL = re.compile(r"^(https?|file)://\S+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEYS = {"name", "url", "sha256", "dest", "extract"}


@dataclass(frozen=True)
class Dataset:
    """One checked entry of ``datasets_items``."""

    name: str
    url: str
    sha256: str
    dest: str
    extract: str = "none"

    @property
    def marker(self) -> str:
        """The marker file that records a verified download of this dataset."""
        parent, base = posixpath.split(self.dest)
        return posixpath.join(parent, f".{base}.dlrig-dataset")

    @property
    def marker_text(self) -> str:
        """What the marker holds once this exact dataset is in place."""
        return render_marker(self.sha256, self.extract)


def render_marker(sha256: str, extract: str) -> str:
    """Marker body: the verified sha256 and how the download was unpacked."""
    return f"sha256={sha256}\nextract={extract}\n"


def marker_matches(dataset: Dataset, lines: list[str] | None) -> bool:
    """True when the marker's lines (as pyinfra's FileContents gives them) record ``dataset``."""
    if lines is None:
        return False
    text = "".join(f"{line}\n" for line in lines)
    return text == dataset.marker_text


def parse_item(index: int, raw: Any) -> Dataset:
    """Check one entry; raise ValueError naming ``datasets_items[index]`` and the bad field."""
    where = f"datasets_items[{index}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(raw).__name__}")
    extra = sorted(set(raw) - _KEYS)
    if extra:
        raise ValueError(f"{where} has unknown field(s) {extra}; known: {sorted(_KEYS)}")
    name = str(raw.get("name", ""))
    where = f"datasets_items[{index}] ({name or 'unnamed'})"
    if not _NAME.match(name):
        raise ValueError(f"{where}: 'name' must match {_NAME.pattern}")
    url = str(raw.get("url", ""))
    if not _URL.match(url):
        raise ValueError(f"{where}: 'url' must be an http(s):// or file:// URL, got {url!r}")
    sha256 = str(raw.get("sha256", "")).strip().lower()
    if not _SHA256.match(sha256):
        raise ValueError(f"{where}: 'sha256' must be 64 hex digits (sha256sum of the download)")
    dest = str(raw.get("dest", ""))
    if not dest.startswith("/") or dest.rstrip("/") == "" or "\n" in dest:
        raise ValueError(f"{where}: 'dest' must be an absolute path below /, got {dest!r}")
    if ".." in dest.split("/"):
        raise ValueError(f"{where}: 'dest' must not contain '..'")
    dest = posixpath.normpath(dest)
    extract = str(raw.get("extract", "none"))
    if extract not in EXTRACT_KINDS:
        kinds = list(EXTRACT_KINDS)
        raise ValueError(f"{where}: 'extract' must be one of {kinds}, not {extract!r}")
    return Dataset(name=name, url=url, sha256=sha256, dest=dest, extract=extract)


def parse_items(raw: Any) -> list[Dataset]:
    """Check the whole list: each entry, and that names and destinations are unique."""
    if not isinstance(raw, list):
        raise ValueError(f"datasets_items must be a list, got {type(raw).__name__}")
    items = [parse_item(i, r) for i, r in enumerate(raw)]
    for attr in ("name", "dest"):
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            value = getattr(item, attr)
            if value in seen:
                raise ValueError(
                    f"datasets_items[{i}]: {attr} {value!r} repeats datasets_items[{seen[value]}]"
                )
            seen[value] = i
    dests = sorted(item.dest for item in items)
    for a, b in itertools.pairwise(dests):
        if b.startswith(a + "/"):
            raise ValueError(f"datasets_items: dest {b!r} lies inside dest {a!r}")
    return items
