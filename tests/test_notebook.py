"""The Colab notebook runs exactly the commands the README tells users to run."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _notebook_commands() -> list[str]:
    nb = json.loads((REPO / "notebooks/colab_quickstart.ipynb").read_text())
    commands = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for line in "".join(cell["source"]).splitlines():
            if line.startswith("!") and not line.startswith("!git"):
                commands.append(line[1:].strip())
    return commands


def _readme_commands() -> set[str]:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    return {line.split("#")[0].strip() for b in blocks for line in b.splitlines() if line.strip()}


def test_notebook_commands_are_the_readmes():
    commands = [c for c in _notebook_commands() if not c.startswith("cat ")]
    assert commands, "the notebook runs no command"
    missing = [c for c in commands if c not in _readme_commands()]
    assert missing == [], f"notebook commands not in README: {missing}"


def test_notebook_installs_then_plans_then_deploys():
    commands = _notebook_commands()
    order = [
        "pip install -r requirements.txt",
        "pyinfra @local deploys/colab.py --dry",
        "pyinfra -y @local deploys/colab.py",
    ]
    assert [c for c in commands if c in order] == order
