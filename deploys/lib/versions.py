"""Version and compute-capability strings: parse, compare, print (pure Python)."""

from __future__ import annotations

import re

Version = tuple[int, ...]


def vtuple(version: str | int | float) -> Version:
    """``"12.4.131"`` → ``(12, 4, 131)``; non-numeric tails (``"12.2.0-14"``) are cut off."""
    parts = []
    for piece in str(version).strip().split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
        if m.group() != piece:
            break
    if not parts:
        raise ValueError(f"not a version: {version!r}")
    return tuple(parts)


def major_minor(version: str) -> Version:
    """``"12.4.131"`` → ``(12, 4)``."""
    t = vtuple(version)
    return (t[0], t[1] if len(t) > 1 else 0)


def vstr(version: Version) -> str:
    return ".".join(str(p) for p in version)


def normalize_arch(value: str | int | float) -> str:
    """``"8.6"``, ``86``, ``"sm_86"``, ``"compute_86"`` → ``"8.6"``; ``"100"`` → ``"10.0"``."""
    text = str(value).strip().lower().removeprefix("sm_").removeprefix("compute_")
    if re.fullmatch(r"\d+\.\d", text):
        return text
    if re.fullmatch(r"\d{2,3}", text):
        return f"{text[:-1]}.{text[-1]}"
    raise ValueError(f"not a compute capability: {value!r} (write it like '8.6' or 'sm_86')")


def arch_digits(cc: str) -> str:
    """``"8.6"`` → ``"86"``."""
    return cc.replace(".", "")
