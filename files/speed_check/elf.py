"""What a shared object links, read from its ELF file without loading it; and, from that, whether
an installed Caffe was built with CUDA.

Part of the speed check (``speed_check.py``); standard library only. Loading Caffe's libraries to
ask would be no answer: on a CPU_ONLY build any GPU call is ``LOG(FATAL)``.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

DT_NEEDED, DT_RPATH, DT_RUNPATH = 1, 15, 29
SHT_DYNAMIC = 6
# Libraries only a CUDA build of Caffe links (a CPU_ONLY build links none of them).
CUDA_LIBS = re.compile(r"^lib(cudart|cublas|curand|cudnn)\b")


def elf_dynamic(path: Path) -> tuple[list[str], list[str]]:
    """DT_NEEDED names and DT_RUNPATH/DT_RPATH directories of an ELF shared object.

    + path: the ELF file

    Raises ``ValueError`` when the file is not ELF (or is truncated).
    """
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise ValueError(f"{path}: not an ELF file")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    # (e_shoff format, its offset, e_shentsize offset, section header, dynamic entry)
    off, off_at, sizes_at, shdr, dyn = (
        ("Q", 0x28, 0x3A, "IIQQQQIIQQ", "qQ") if is64 else ("I", 0x20, 0x2E, "IIIIIIIIII", "iI")
    )
    try:
        (shoff,) = struct.unpack_from(end + off, data, off_at)
        shentsize, shnum = struct.unpack_from(end + "HH", data, sizes_at)
        shdr, dyn = end + shdr, end + dyn
        sections = [struct.unpack_from(shdr, data, shoff + i * shentsize) for i in range(shnum)]
        needed: list[str] = []
        paths: list[str] = []
        for sec in sections:
            if sec[1] != SHT_DYNAMIC:
                continue
            offset, size, link = sec[4], sec[5], sec[6]
            strtab = sections[link][4]
            for at in range(offset, offset + size, struct.calcsize(dyn)):
                tag, value = struct.unpack_from(dyn, data, at)
                if tag == 0:
                    break
                if tag in (DT_NEEDED, DT_RPATH, DT_RUNPATH):
                    start = strtab + value
                    text = data[start : data.index(b"\0", start)].decode("utf-8", "replace")
                    if tag == DT_NEEDED:
                        needed.append(text)
                    else:
                        paths.extend(p for p in text.split(":") if p)
    except (struct.error, IndexError) as e:
        raise ValueError(f"{path}: truncated ELF file ({e})") from None
    return needed, paths


def _find_library(name: str, origin: Path, runpaths: list[str], prefix: Path) -> Path | None:
    """Where the loader would find ``name``: runpaths ($ORIGIN expanded), the prefix, the usual."""
    dirs = [p.replace("$ORIGIN", str(origin)).replace("${ORIGIN}", str(origin)) for p in runpaths]
    dirs += [str(prefix / "lib")]
    dirs += [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    dirs += ["/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"]
    for directory in dirs:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def _makefile_cpu_only(prefix: Path) -> bool | None:
    """``CPU_ONLY := 1`` in ``<prefix>/Makefile.config``: True, False, or None without the file."""
    try:
        text = (prefix / "Makefile.config").read_text()
    except OSError:
        return None
    return any(re.match(r"\s*CPU_ONLY\s*:?=\s*1\b", line) for line in text.splitlines())


def caffe_gpu_build(package_dir: Path | None, prefix: Path) -> tuple[bool | None, str]:
    """Whether an installed Caffe was built with CUDA, read from the build: (answer, evidence).

    + package_dir: the ``caffe`` Python package's directory (holds ``_caffe*.so``), or None
    + prefix: Caffe's install prefix (``lib/libcaffe.so*``, ``Makefile.config``)

    A CUDA build links ``libcudart`` / ``libcublas`` / ``libcurand`` (``_caffe.so`` directly or
    through ``libcaffe.so``); a CPU_ONLY build links none. Without readable libraries the
    ``CPU_ONLY`` line of ``<prefix>/Makefile.config`` decides; without either: (None, why).
    """
    read: list[str] = []
    unresolved: list[str] = []
    modules = sorted(package_dir.glob("_caffe*.so")) if package_dir else []
    for module in modules:
        try:
            needed, runpaths = elf_dynamic(module)
        except (OSError, ValueError) as e:
            unresolved.append(str(e))
            continue
        read.append(module.name)
        libraries = [(module, needed)]
        for name in needed:
            if not name.startswith("libcaffe"):
                continue
            found = _find_library(name, module.parent, runpaths, prefix)
            if found is None:
                unresolved.append(f"{name} not found")
                continue
            try:
                libraries.append((found, elf_dynamic(found)[0]))
                read.append(str(found))
            except (OSError, ValueError) as e:
                unresolved.append(str(e))
        for path, names in libraries:
            cuda = [n for n in names if CUDA_LIBS.match(n)]
            if cuda:
                return True, f"{path} links {', '.join(cuda)}"
    if read and not unresolved:
        return False, f"CPU_ONLY build: {' and '.join(read)} link no CUDA library"
    cpu_only = _makefile_cpu_only(prefix)
    if cpu_only is not None:
        return not cpu_only, f"{prefix / 'Makefile.config'}: CPU_ONLY {'on' if cpu_only else 'off'}"
    why = "; ".join(unresolved) or f"no _caffe*.so in {package_dir}"
    return None, f"build unknown ({why}); no {prefix / 'Makefile.config'}"
