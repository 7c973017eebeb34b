"""The compatibility rules (files/compat.yml) and their lookups (deploys/lib/rules.py)."""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploys.lib import rules, versions
from tests.deploys.lib.test_compat import RULES, driver

# --- the rules file ------------------------------------------------------------------------


def test_every_rule_has_a_source():
    raw = RULES.raw
    for section in ("nvcc_host_gcc", "gpu_arch", "distro_gcc"):
        for row in raw[section]:
            assert row["source"].startswith("https://"), (section, row)
    for section in ("driver_cuda", "cudnn", "torch", "tensorflow"):
        assert raw[section]["source"].startswith("https://"), section
    assert raw["driver_cuda"]["minor_version_compat"]["source"].startswith("https://")


@pytest.mark.parametrize(
    ("rows", "key"),
    [
        (RULES.nvcc_host_gcc, "from"),
        (RULES.min_driver, "cuda"),
        (RULES.min_driver, "driver"),
        (RULES.torch["releases"], "version"),
        (RULES.tensorflow["releases"], "version"),
    ],
)
def test_rule_rows_are_sorted(rows, key):
    found = [versions.vtuple(r[key]) for r in rows]
    assert found == sorted(found) and len(set(found)) == len(found)


def test_gcc_ranges_never_shrink():
    rows = RULES.nvcc_host_gcc
    for a, b in itertools.pairwise(rows):
        assert b["gcc_max"] >= a["gcc_max"]
        assert a["gcc_min"] <= a["gcc_max"]


# --- table tests: documented edge cases ----------------------------------------------------


@pytest.mark.parametrize(
    ("cuda", "lo", "hi"),
    [
        ("10.2.89", 5, 8),
        ("11.0.221", 6, 9),
        ("11.4.0", 6, 10),  # gcc 11 came with 11.4.1
        ("11.4.4", 6, 11),
        ("11.8.89", 6, 11),  # Debian 12's nvidia-cuda-toolkit: refuses gcc 12
        ("12.0.140", 6, 12),
        ("12.3.107", 6, 12),  # no gcc 13 before 12.4
        ("12.4.131", 6, 13),
        ("12.6.85", 6, 13),
        ("12.8.93", 6, 14),
        ("13.0.88", 6, 15),  # checked against this machine's host_config.h
    ],
)
def test_nvcc_gcc_range(cuda, lo, hi):
    got = rules.nvcc_gcc_range(RULES, cuda)
    assert got is not None and got[:2] == (lo, hi)


@pytest.mark.parametrize(
    ("cc", "cuda", "ok"),
    [
        ("3.5", "11.8", True),
        ("3.5", "12.0", False),  # Kepler gone in 12.x
        ("3.0", "11.0", False),
        ("5.2", "12.9", True),
        ("5.2", "13.0", False),  # Maxwell, Pascal, Volta gone in 13.0
        ("6.1", "13.0", False),
        ("7.0", "13.0", False),
        ("7.5", "13.0", True),
        ("9.0", "11.7", False),
        ("9.0", "11.8", True),  # Hopper from 11.8
        ("8.9", "11.8", True),
        ("10.0", "12.6", False),
        ("10.0", "12.8", True),  # Blackwell from 12.8
        ("12.0", "12.8", True),
        ("10.1", "13.0", False),  # renamed sm_110
        ("11.0", "13.0", True),
        ("4.2", "12.0", None),  # not in the rules
    ],
)
def test_arch_support(cc, cuda, ok):
    assert rules.arch_supported(RULES, cc, cuda) is ok


@pytest.mark.parametrize(
    ("drv", "max_cuda"),
    [("470.82.01", "11.4"), ("525.60.13", "12.0"), ("550.54.14", "12.4"), ("580.65.06", "13.0")],
)
def test_driver_max_cuda(drv, max_cuda):
    assert rules.driver_max_cuda(RULES, drv) == max_cuda


@settings(max_examples=200, deadline=None)
@given(
    drv=st.sampled_from([r["driver"] for r in RULES.min_driver]),
    tk=st.sampled_from([r["cuda"] for r in RULES.min_driver]),
)
def test_driver_check_matches_table(drv, tk):
    """A toolkit runs iff the driver reaches its minimum, or minor version compatibility."""
    max_cuda = rules.driver_max_cuda(RULES, drv)
    ok, how = rules.driver_runs(RULES, driver(drv, max_cuda), tk)
    need = rules.driver_min_for(RULES, tk)
    full = versions.vtuple(drv) >= versions.vtuple(need)  # type: ignore[arg-type]
    floor = RULES.minor_version_compat.get(tk.split(".")[0])
    minor = bool(floor) and versions.vtuple(drv) >= versions.vtuple(floor)  # type: ignore[arg-type]
    assert ok == (full or minor)
    if full:
        assert how == "full"


@pytest.mark.parametrize("cuda_dir", sorted(Path("/usr/local").glob("cuda-*")) or [None])
def test_gcc_max_matches_installed_host_config(cuda_dir):
    """Where a real toolkit is on this machine, its crt/host_config.h agrees with the rule."""
    if cuda_dir is None:
        pytest.skip("no CUDA toolkit under /usr/local")
    headers = list(cuda_dir.glob("targets/*/include/crt/host_config.h")) + list(
        cuda_dir.glob("include/crt/host_config.h")
    )
    version_file = cuda_dir / "bin" / "nvcc"
    if not headers or not version_file.exists():
        pytest.skip(f"{cuda_dir} has no nvcc / host_config.h")
    out = subprocess.run([str(version_file), "--version"], capture_output=True, text=True).stdout
    version = re.search(r"release \S+, V(\d+\.\d+\.\d+)", out).group(1)  # type: ignore[union-attr]
    text = headers[0].read_text()
    enforced = int(re.search(r"#if __GNUC__ > (\d+)", text).group(1))  # type: ignore[union-attr]
    assert rules.nvcc_gcc_range(RULES, version)[1] == enforced  # type: ignore[index]
