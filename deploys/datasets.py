"""Checksummed dataset downloads: fetch, verify sha256, unpack (zip/tar/gz) into place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import DeployError, QuoteString, StringCommand, deploy, operation
from pyinfra.facts.files import Directory, File, FileContents
from pyinfra.operations import files

from deploys.lib import data
from deploys.lib.datasets import Dataset, marker_matches, parse_items
from deploys.preflight import plan_for

PREFIX = "datasets_"

DEFAULTS: dict[str, Any] = {
    "datasets_items": [],
}

DOCS: dict[str, str] = {
    "datasets_items": (
        "Datasets to put in place: list of {name, url, sha256, dest, extract: zip|tar|gz|none}; "
        "downloaded, sha256-verified, unpacked to dest (may be on the Drive mount); skipped when "
        "the marker .<dest name>.dlrig-dataset next to dest records the same sha256."
    ),
}

HELPER_SRC = Path(__file__).resolve().parents[1] / "files" / "datasets" / "fetch.py"
HELPER = "/usr/local/lib/dlrig/fetch_dataset.py"


@operation()
def dataset(
    dataset_name: str,
    url: str,
    sha256: str,
    dest: str,
    extract: str = "none",
    python: str = "python3",
    helper: str = HELPER,
):
    """
    Put one dataset in place: download, verify its sha256, unpack, record a marker last.

    + dataset_name: the dataset's name (for messages)
    + url: where the host downloads it from (http, https or file URL)
    + sha256: the download's sha256; a mismatch fails and leaves nothing at ``dest``
    + dest: absolute path: a directory for ``zip``/``tar``, a file for ``gz``/``none``
    + extract: ``zip``, ``tar`` (any compression), ``gz`` (one gzipped file) or ``none``
    + python: Python 3 interpreter on the host
    + helper: path of the uploaded download helper on the host

    The dataset counts as present only when ``<parent>/.<name of dest>.dlrig-dataset`` records
    this sha256 and extraction kind *and* ``dest`` exists — never because a file exists.

    **Example:**

    .. code:: python

        dataset(
            dataset_name="mnist",
            url="https://example.org/mnist.tar.gz",
            sha256="0123…",
            dest="/data/mnist",
            extract="tar",
        )
    """
    item = Dataset(name=dataset_name, url=url, sha256=sha256.lower(), dest=dest, extract=extract)
    kind = Directory if extract in ("zip", "tar") else File
    if marker_matches(item, host.get_fact(FileContents, path=item.marker)) and host.get_fact(
        kind, path=dest
    ):
        host.noop(f"dataset {dataset_name} is at {dest} (sha256 {item.sha256[:12]}… verified)")
        return
    yield StringCommand(
        QuoteString(python),
        QuoteString(helper),
        QuoteString(item.url),
        QuoteString(item.sha256),
        QuoteString(item.dest),
        QuoteString(item.extract),
        QuoteString(item.marker),
    )


def _items() -> list[Dataset]:
    try:
        return parse_items(host.data.datasets_items)
    except ValueError as e:
        raise DeployError(f"{host.name}: {e}") from None


@deploy("Download datasets", data_defaults=DEFAULTS)
def datasets() -> None:
    """
    Download the datasets named in host data, verify them, and unpack them into place.

    Data keys (see README): ``datasets_items`` — a list of ``{name, url, sha256, dest,
    extract}``; the download helper runs with the plan's interpreter. Each download lands in
    a temporary directory next to ``dest``, is checked against its sha256 and moved into place
    atomically; a marker written last records the sha256, so a second run (or a run on another
    VM sharing the same Drive) skips it. A wrong sha256 fails that host and leaves no file at
    ``dest``.

    **Example:**

    .. code:: python

        from deploys.datasets import datasets

        datasets()
    """
    data.check_host_data(host, DEFAULTS)
    items = _items()
    if not items:
        return
    files.put(
        name="Upload the dataset download helper",
        src=str(HELPER_SRC),
        dest=HELPER,
        mode="644",
        create_remote_dir=True,
    )
    for item in items:
        dataset(
            name=f"Dataset {item.name} at {item.dest}",
            dataset_name=item.name,
            url=item.url,
            sha256=item.sha256,
            dest=item.dest,
            extract=item.extract,
            python=plan_for(host).python.base,  # type: ignore[union-attr]
        )
