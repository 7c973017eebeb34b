"""deploys.lib.entry: the executed deploy file gets a module, so inspect finds it directly."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from deploys.lib.entry import register_deploy_file


def _frame_of_executed_file(path: Path):
    path.write_text("import sys\nframe = sys._getframe()\n")
    scope: dict = {"__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), scope)  # as pyinfra's exec_file does
    return scope["frame"]


def test_getmodule_finds_the_registered_deploy_file(tmp_path: Path) -> None:
    frame = _frame_of_executed_file(tmp_path / "my_entry.py")
    assert inspect.getmodule(frame) is None  # not imported: no module, a full scan each time

    register_deploy_file(str(tmp_path / "my_entry.py"))
    register_deploy_file(str(tmp_path / "my_entry.py"))  # idempotent
    module = inspect.getmodule(frame)
    assert module is not None and module.__file__ == str(tmp_path / "my_entry.py")
    assert sum(1 for m in list(sys.modules.values()) if m is module) == 1
    assert inspect.getframeinfo(frame).lineno == 2


def test_nothing_to_register() -> None:
    before = set(sys.modules)
    register_deploy_file(None)
    assert set(sys.modules) == before
