"""Rewrite the golden plans after an intended change: ``python -m tests.plans.update``."""

from __future__ import annotations

from tests.plans.render import PLANS, PROFILES, render

if __name__ == "__main__":
    for name in PROFILES:
        path = PLANS / f"{name}.txt"
        path.write_text(render(name))
        print(f"wrote {path}")
