"""The repository reads nothing outside its own tree: a fresh clone must work on its own.

Every file git tracks is searched for text that reaches outside the repository (the reference
data used to be read from a folder beside the checkout); tracked symlinks must stay inside the
repository; and the provenance table of ``tests/data/openlane/README.md`` must match the files
that are really there.

The patterns are assembled from pieces so that this file does not match them itself (it is
tracked, so it is searched like every other file).
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENLANE_DATA = REPO_ROOT / "tests" / "data" / "openlane"
DATA_README = OPENLANE_DATA / "README.md"
#: Files of tests/data/openlane that are not data and so are not in the README's table.
DATA_META = {"LICENSE", "NOTICE", "README.md"}

_UP = re.escape("..")
_WORD = "shared"
_Q = "['\"]"  # either quote
#: (what it catches, regex). Precise on purpose: the Terraform volume resources named
#: "shared", SHARED_LIMITS in the API, "/shared/<token>" share links and "/srv/shared" mounts
#: are all legitimate and must not match.
OUTSIDE_PATTERNS = [
    ("a relative path up into the shared folder", re.compile(_UP + r"[/\\]+" + _WORD + r"\b")),
    ("the shared folder's absolute path", re.compile(r"/work/+" + _WORD + r"\b")),
    (
        "a pathlib path to the shared data",
        re.compile(_Q + _WORD + _Q + r"\s*/\s*" + _Q + "data" + _Q),
    ),
    (
        "a pathlib path from a parent folder into the shared folder",
        re.compile(r"\bparents?\b(?:\[\s*-?\d+\s*\])?\s*/\s*" + _Q + _WORD + _Q),
    ),
    (
        "a joined path from a parent folder into the shared folder",
        re.compile(r"\bparents?(?:\[\s*-?\d+\s*\])?\.joinpath\(\s*" + _Q + _WORD + _Q),
    ),
    (
        "os.path.join up into the shared folder",
        re.compile(_Q + _UP + _Q + r"\s*,\s*" + _Q + _WORD + _Q),
    ),
]


def tracked_paths() -> list[str]:
    """Every path git tracks in this repository (the index), relative to its root."""
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60
    ).stdout
    paths = [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]
    assert paths, "git ls-files listed nothing"
    return paths


def outside_references(rel: str, text: str) -> list[str]:
    """``path:line: what: text`` for every line of ``text`` that reaches outside the repo."""
    hits = []
    for number, line in enumerate(text.splitlines(), start=1):
        for what, pattern in OUTSIDE_PATTERNS:
            if pattern.search(line):
                hits.append(f"{rel}:{number}: {what}: {line.strip()[:160]}")
                break
    return hits


def read_text(path: Path) -> str | None:
    """The file as text, or None for a binary file (a NUL byte in it)."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def test_the_patterns_catch_what_used_to_be_there_and_nothing_legitimate():
    up = ".."
    caught = [
        f"DATA = REPO_ROOT.parent / {_WORD!r} / 'data'",
        f'return Path(os.path.realpath(__file__)).parents[2].parent / "{_WORD}" / "data"',
        f'SPM = ROOT / "{_WORD}" / "data" / "openlane2"',
        f"metrics taken from real runs in `{up}/{_WORD}/data/` and varied",
        f"cp /work/{_WORD}/data/openlane2/spm_metrics.json .",
        f'BASE = HERE.parents[1] / "{_WORD}"',
        f'BASE = HERE.parent.joinpath("{_WORD}", "data")',
        f'os.path.join(here, "{up}", "{_WORD}", "data")',
    ]
    for line in caught:
        assert outside_references("x.py", line), line
    legitimate = [
        f'resource "aws_ebs_volume" "{_WORD}" {{',
        f'    device_name = "{_WORD}"',
        "SHARED_LIMITS: dict[bool, tuple[str, str, str]] = {",
        f'assert link.startswith(f"{{SITE}}/{_WORD}/")',
        f'"RUN_DIR": "/{_WORD}/runs/u u",',
        f'assert f"{{disk}} /srv/{_WORD} ext4 defaults,noatime,nofail 0 2" in added',
        f'OPENLANE_DATA = REPO_ROOT / "tests" / "data" / "openlane"  # {_WORD} data',
    ]
    for line in legitimate:
        assert not outside_references("x.py", line), line


def test_this_file_does_not_match_its_own_patterns():
    own = Path(__file__).resolve()
    text = read_text(own)
    assert text is not None
    assert outside_references(own.relative_to(REPO_ROOT).as_posix(), text) == []


def test_no_tracked_file_reaches_outside_the_repository():
    hits = []
    for rel in tracked_paths():
        path = REPO_ROOT / rel
        if path.is_symlink() or not path.is_file():
            continue  # symlinks: see below; deleted in the work tree or a submodule: no text
        text = read_text(path)
        if text is not None:
            hits += outside_references(rel, text)
    assert not hits, "tracked files reach outside the repository:\n" + "\n".join(hits)


def test_no_tracked_symlink_points_outside_the_repository():
    root = REPO_ROOT.resolve()
    bad = []
    for rel in tracked_paths():
        path = REPO_ROOT / rel
        if not path.is_symlink():
            continue
        target = Path(os.path.realpath(path))
        if target != root and root not in target.parents:
            bad.append(f"{rel} -> {os.readlink(path)} (resolves to {target})")
    assert not bad, "tracked symlinks point outside the repository:\n" + "\n".join(bad)


def readme_entries() -> list[str]:
    """The backticked paths/globs of the first column of the README's provenance table."""
    entries = []
    for line in DATA_README.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        first = line.strip("|").split("|")[0].strip()
        if first == "file" or set(first) <= set("-: "):
            continue  # the header row and the separator row
        found = re.findall(r"`([^`]+)`", first)
        assert found, f"table row without a backticked path: {line}"
        entries += found
    return entries


def test_every_file_in_the_openlane_data_readme_exists():
    entries = readme_entries()
    assert len(entries) >= 6, f"too few rows parsed from {DATA_README}: {entries}"
    missing = []
    for entry in entries:
        assert not entry.startswith("/") and ".." not in Path(entry).parts, entry
        if any(c in entry for c in "*?["):
            if not [p for p in OPENLANE_DATA.glob(entry) if p.is_file()]:
                missing.append(f"{entry} (matches no file)")
        elif not (OPENLANE_DATA / entry).is_file():
            missing.append(entry)
    assert not missing, f"listed in {DATA_README} but not under {OPENLANE_DATA}: {missing}"


def test_every_openlane_data_file_is_in_the_readme():
    entries = readme_entries()
    unlisted = []
    for path in sorted(OPENLANE_DATA.rglob("*")):
        rel = path.relative_to(OPENLANE_DATA).as_posix()
        if not path.is_file() or rel in DATA_META or "__pycache__" in path.parts:
            continue
        if not any(fnmatch.fnmatchcase(rel, entry) for entry in entries):
            unlisted.append(rel)
    assert not unlisted, f"files without provenance in {DATA_README}: {unlisted}"
