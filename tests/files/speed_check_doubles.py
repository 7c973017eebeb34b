"""Test doubles for the speed check script (``files/speed_check``): its modules imported as the
script imports them, a minimal ELF writer, and stand-ins for pycaffe and numpy."""

from __future__ import annotations

import importlib
import struct
import sys
from pathlib import Path
from types import ModuleType

SCRIPT_DIR = Path(__file__).resolve().parents[2] / "files" / "speed_check"
SCRIPT = SCRIPT_DIR / "speed_check.py"


def script_module(name: str) -> ModuleType:
    """Import a module of the script (``speed_check``, ``benches``, ``elf``, ``verdict``) the way
    the script does: from its directory on ``sys.path``, so all share one copy of each module."""
    if str(SCRIPT_DIR) not in sys.path:
        sys.path.insert(0, str(SCRIPT_DIR))
    return importlib.import_module(name)


def make_elf(path: Path, needed: list[str], runpath: str | None = None) -> Path:
    """Write a minimal ELF64 shared object: a .dynstr and a .dynamic with DT_NEEDED/RUNPATH."""
    strtab = b"\0"
    entries = []
    for tag, text in [(1, n) for n in needed] + ([(29, runpath)] if runpath else []):
        entries.append((tag, len(strtab)))
        strtab += text.encode() + b"\0"
    entries.append((0, 0))
    dynamic = b"".join(struct.pack("<qQ", tag, value) for tag, value in entries)
    strtab += b"\0" * (-len(strtab) % 8)
    dyn_off = 64 + len(strtab)
    shoff = dyn_off + len(dynamic)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = struct.pack("<16sHHIQQQIHHHHHH", ident, 3, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 0)
    shdr = "<IIQQQQIIQQ"
    sections = (
        struct.pack(shdr, *([0] * 10))
        + struct.pack(shdr, 0, 3, 0, 0, 64, len(strtab), 0, 0, 1, 0)
        + struct.pack(shdr, 0, 6, 0, 0, dyn_off, len(dynamic), 1, 0, 8, 16)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + strtab + dynamic + sections)
    return path


FAKE_CAFFE = '''"""Test double of pycaffe (dlrig tests): CPU forward passes work; set_device aborts,
as Caffe's LOG(FATAL) does on a CPU_ONLY build (or a GPU build without a usable device)."""
import os
import time

{on_import}
TEST = 1
__version__ = "1.0.0-test-double"


def set_mode_cpu():
    pass


def set_mode_gpu():
    pass


def set_device(index):
    os.abort()


class _Data:
    shape = (4, 3, 300, 300)

    def __setitem__(self, key, value):
        pass


class _Blob:
    def __init__(self):
        self.data = _Data()

    def reshape(self, *shape):
        pass


class Net:
    def __init__(self, prototxt, phase):
        assert os.path.isfile(prototxt)
        self.blobs = {{"data": _Blob()}}
        self.params = {{"conv0": [_Blob()]}}

    def reshape(self):
        pass

    def forward(self):
        time.sleep(0.002)
'''

FAKE_NUMPY = '''"""Test double of numpy (dlrig tests): just what the Caffe benchmark calls."""


class _Rng:
    def normal(self, loc, scale, shape):
        return 0.0

    def random(self, shape):
        return 0.0


class random:
    @staticmethod
    def default_rng(seed):
        return _Rng()
'''


def write_fake_caffe(site: Path, prefix: Path, on_import: str = "", cuda: bool = False) -> Path:
    """Install test doubles of ``caffe`` (and the bit of ``numpy`` it needs) under ``site``.

    + site: a directory to put on PYTHONPATH
    + prefix: the Caffe prefix (``lib/libcaffe.so.1.0.0`` goes there)
    + on_import: Python run when ``caffe`` is imported (raise, abort, …)
    + cuda: link libcaffe.so to CUDA libraries (a GPU build) instead of none (CPU_ONLY)
    """
    package = site / "caffe"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(FAKE_CAFFE.format(on_import=on_import))
    make_elf(package / "_caffe.so", ["libcaffe.so.1.0.0", "libc.so.6"], "$ORIGIN/../lib")
    make_elf(
        site / "lib" / "libcaffe.so.1.0.0",
        ["libcudart.so.12", "libcublas.so.12"] if cuda else ["libc.so.6"],
    )
    (site / "numpy").mkdir(exist_ok=True)
    (site / "numpy" / "__init__.py").write_text(FAKE_NUMPY)
    prefix.mkdir(parents=True, exist_ok=True)
    return site
