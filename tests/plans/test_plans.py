"""The dry-run plans of the three golden profiles equal the reviewed files in tests/plans/."""

from __future__ import annotations

import pytest

from tests.plans.render import PLANS, PROFILES, render


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_plan_matches_golden_file(name):
    expected = (PLANS / f"{name}.txt").read_text()
    assert render(name) == expected, (
        f"the {name} plan changed: review, then run python -m tests.plans.update"
    )


def test_golden_profiles_differ_where_they_must():
    colab = (PLANS / "colab_gpu.txt").read_text()
    h100 = (PLANS / "ubuntu2404_h100_server.txt").read_text()
    cpu = (PLANS / "debian12_cpu.txt").read_text()
    assert "mode: CPU_ONLY" in cpu and "mode: CUDA" in h100 and "mode: CUDA" in colab
    assert "sm_90" in h100 and "sm_75" in colab
