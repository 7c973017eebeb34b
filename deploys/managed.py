"""An operation for directories dlrig owns a slice of: exactly these files, no others."""

from __future__ import annotations

import hashlib
import io

from pyinfra import host
from pyinfra.api import operation
from pyinfra.operations import files

from facts.batch import AS_LOGIN_USER
from facts.managed import OwnedFiles


@operation()
def files_exactly(
    directory: str,
    pattern: str,
    wanted: dict[str, str],
    mode: str = "644",
    owned: dict | None = None,
):
    """
    Make the files in ``directory`` matching ``pattern`` exactly ``wanted``.

    + directory: the directory, e.g. ``/etc/ld.so.conf.d``
    + pattern: shell pattern of the files this caller owns, e.g. ``dlrig-boost-*.conf``;
      files not matching it are never touched
    + wanted: file name (matching ``pattern``) → content; owned files not named here are removed
    + mode: mode of the written files
    + owned: the ``OwnedFiles`` fact for ``directory``/``pattern`` when the caller read it
      already (batched with its own facts); read here otherwise

    **Example:**

    .. code:: python

        files_exactly(
            directory="/etc/ld.so.conf.d",
            pattern="dlrig-boost-*.conf",
            wanted={"dlrig-boost-lib.conf": "/opt/dlrig/boost/lib\\n"},
        )
    """
    # One fact for the directory and every owned file (mode + sha1): on a fleet, each fact is
    # a round trip per host; files.put's own facts are only read for files that differ.
    if owned is None:
        # dlrig's managed files are 0644 in world-readable directories: no sudo to read them.
        owned = host.get_fact(OwnedFiles, path=directory, fname=pattern, **AS_LOGIN_USER)
    present = owned["files"]
    wanted_paths = {f"{directory}/{name}": content for name, content in wanted.items()}
    changed = False
    if wanted_paths and not owned["directory"]:
        for command in files.directory._inner(path=directory):
            changed = True
            yield command
    for path in sorted(set(present) - set(wanted_paths)):
        changed = True
        yield from files.file._inner(path=path, present=False)
    for path, content in sorted(wanted_paths.items()):
        have = present.get(path)
        sha1 = hashlib.sha1(content.encode()).hexdigest()
        if have and have["sha1"] == sha1 and have["mode"] == int(str(mode), 8):
            continue
        for command in files.put._inner(src=io.StringIO(content), dest=path, mode=mode):
            changed = True
            yield command
    if not changed:
        host.noop(f"{directory}/{pattern}: {len(wanted_paths)} file(s) up to date")
