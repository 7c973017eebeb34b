"""The speed check's ELF reader and the Caffe CUDA-build decision made with it
(``files/speed_check/elf.py``), on minimal ELF files and on a real shared object."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.files.speed_check_doubles import make_elf, script_module

reader = script_module("elf")


def test_elf_dynamic_reads_needed_and_runpath(tmp_path):
    elf = make_elf(tmp_path / "x.so", ["libcaffe.so.1.0.0", "libc.so.6"], "$ORIGIN/../../lib")
    assert reader.elf_dynamic(elf) == (["libcaffe.so.1.0.0", "libc.so.6"], ["$ORIGIN/../../lib"])
    (tmp_path / "text.so").write_text("not ELF")
    with pytest.raises(ValueError, match="not an ELF"):
        reader.elf_dynamic(tmp_path / "text.so")


def test_elf_dynamic_on_a_real_shared_object():
    import _ctypes  # a C extension every CPython build has as a shared object here

    if not str(getattr(_ctypes, "__file__", "")).endswith(".so"):
        pytest.skip("_ctypes is built in")
    needed, _ = reader.elf_dynamic(Path(_ctypes.__file__))
    assert any(name.startswith("libffi") for name in needed) or "libc.so.6" in needed


def test_caffe_build_decided_from_its_libraries(tmp_path):
    prefix = tmp_path / "caffe"
    package = prefix / "python" / "caffe"
    # CPU_ONLY: _caffe.so -> libcaffe.so (found through $ORIGIN) -> no CUDA library.
    make_elf(package / "_caffe.so", ["libcaffe.so.1.0.0", "libc.so.6"], "$ORIGIN/../../lib")
    make_elf(prefix / "lib" / "libcaffe.so.1.0.0", ["libboost_system.so.1.88.0", "libc.so.6"])
    gpu, evidence = reader.caffe_gpu_build(package, prefix)
    assert gpu is False and "CPU_ONLY" in evidence
    # CUDA: libcaffe.so links cudart/cublas.
    make_elf(prefix / "lib" / "libcaffe.so.1.0.0", ["libcudart.so.12", "libcublas.so.12"])
    gpu, evidence = reader.caffe_gpu_build(package, prefix)
    assert gpu is True and "libcudart.so.12" in evidence


def test_caffe_build_falls_back_to_makefile_config(tmp_path):
    assert reader.caffe_gpu_build(tmp_path / "none", tmp_path)[0] is None
    (tmp_path / "Makefile.config").write_text("# CPU_ONLY := 1\nUSE_CUDNN := 1\n")
    assert reader.caffe_gpu_build(None, tmp_path)[0] is True
    (tmp_path / "Makefile.config").write_text("CPU_ONLY := 1\n")
    assert reader.caffe_gpu_build(None, tmp_path)[0] is False
