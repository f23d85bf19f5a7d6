"""docs/reliability.md names real tests: every ``tests/...py::name`` it cites exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CITED = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_every_cited_test_exists():
    text = (REPO_ROOT / "docs" / "reliability.md").read_text()
    cited = CITED.findall(text)
    assert len(cited) >= 12
    for path, name in cited:
        source = (REPO_ROOT / path).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} is not a test"
