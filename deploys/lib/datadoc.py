"""The README's data-key table, generated from every deploy's DEFAULTS and DOCS.

``python -m deploys.lib.datadoc`` prints the table; ``--write`` puts it into README.md between
the ``<!-- data-keys:begin -->`` and ``<!-- data-keys:end -->`` markers.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from deploys.lib.data import deploy_modules

README = Path(__file__).resolve().parents[2] / "README.md"
BEGIN = "<!-- data-keys:begin -->"
END = "<!-- data-keys:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table() -> str:
    """Markdown table: deploy | key | default | description."""
    rows = ["| deploy | key | default | description |", "|---|---|---|---|"]
    for name in deploy_modules():
        module = importlib.import_module(name)
        for key, default in module.DEFAULTS.items():
            doc = module.DOCS.get(key, "")
            rows.append(
                f"| `{name.split('.')[-1]}` | `{key}` | `{_cell(repr(default))}` | {_cell(doc)} |"
            )
    return "\n".join(rows) + "\n"


def readme_section(text: str) -> str:
    """The table as it stands in README text (between the markers)."""
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END)].strip("\n") + "\n"


def write() -> None:
    text = README.read_text()
    start = text.index(BEGIN) + len(BEGIN)
    README.write_text(text[:start] + "\n" + table() + text[text.index(END) :])


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write()
    else:
        sys.stdout.write(table())
