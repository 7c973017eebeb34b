"""An operation for directories dlrig owns a slice of: exactly these files, no others."""

from __future__ import annotations

import io

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import FindFiles
from pyinfra.operations import files


@operation()
def files_exactly(directory: str, pattern: str, wanted: dict[str, str], mode: str = "644"):
    """
    Make the files in ``directory`` matching ``pattern`` exactly ``wanted``.

    + directory: the directory, e.g. ``/etc/ld.so.conf.d``
    + pattern: shell pattern of the files this caller owns, e.g. ``dlrig-boost-*.conf``;
      files not matching it are never touched
    + wanted: file name (matching ``pattern``) → content; owned files not named here are removed
    + mode: mode of the written files

    **Example:**

    .. code:: python

        files_exactly(
            directory="/etc/ld.so.conf.d",
            pattern="dlrig-boost-*.conf",
            wanted={"dlrig-boost-lib.conf": "/opt/dlrig/boost/lib\\n"},
        )
    """
    present = host.get_fact(FindFiles, path=directory, fname=pattern, maxdepth=1) or []
    wanted_paths = {f"{directory}/{name}": content for name, content in wanted.items()}
    changed = False
    if wanted_paths:
        for command in files.directory._inner(path=directory):
            changed = True
            yield command
    for path in sorted(set(present) - set(wanted_paths)):
        changed = True
        yield from files.file._inner(path=path, present=False)
    for path, content in sorted(wanted_paths.items()):
        for command in files.put._inner(src=io.StringIO(content), dest=path, mode=mode):
            changed = True
            yield command
    if not changed:
        host.noop(f"{directory}/{pattern}: {len(wanted_paths)} file(s) up to date")
