"""singularity/: every Apptainer definition parses (spython), is pinned, labelled and documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from spython.main.parse.parsers import SingularityParser

REPO_ROOT = Path(__file__).resolve().parents[2]
SING_DIR = REPO_ROOT / "singularity"
DEF_FILES = sorted(SING_DIR.glob("*.def"))

# flow -> (image repository, tag pattern, where the portal expects the .sif)
EXPECTED = {
    "openlane1.def": (
        "efabless/openlane",
        r"\d{4}\.\d{2}\.\d{2}",
        "/apps/openlane/openlane.sif",
    ),
    "openlane2.def": (
        "ghcr.io/efabless/openlane2",
        r"\d+\.\d+\.\d+",
        "/apps/openlane/openlane2.sif",
    ),
}
REQUIRED_LABELS = {
    "org.openlane-portal.flow",
    "org.openlane-portal.openlane-version",
    "org.openlane-portal.base-image",
    "org.openlane-portal.pdk",
    "org.opencontainers.image.version",
}


def _recipe(path: Path):
    parser = SingularityParser(str(path))
    assert list(parser.recipe) == ["spython-base"], "one stage expected"
    return parser.recipe["spython-base"]


def _labels(recipe) -> dict[str, str]:
    labels = {}
    for line in recipe.labels:
        key, _, value = line.partition(" ")
        labels[key] = value.strip()
    return labels


def _sections(path: Path) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^%(\w+)", path.read_text(), re.MULTILINE)}


def test_both_flows_have_a_definition():
    assert {p.name for p in DEF_FILES} == set(EXPECTED)


@pytest.mark.parametrize("path", DEF_FILES, ids=lambda p: p.name)
def test_header_is_a_pinned_docker_image(path):
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines[0] == "Bootstrap: docker"
    assert lines[1].startswith("From: ")
    repository, tag_pattern, _ = EXPECTED[path.name]
    source = _recipe(path).fromHeader
    name, sep, tag = source.rpartition(":")
    assert sep and name == repository, source
    assert tag != "latest" and "latest" not in source
    assert re.fullmatch(tag_pattern, tag), f"{source}: not a pinned release tag"


@pytest.mark.parametrize("path", DEF_FILES, ids=lambda p: p.name)
def test_labels_record_the_versions(path):
    recipe = _recipe(path)
    labels = _labels(recipe)
    assert set(labels) >= REQUIRED_LABELS, REQUIRED_LABELS - set(labels)
    tag = recipe.fromHeader.rpartition(":")[2]
    assert labels["org.openlane-portal.openlane-version"] == tag
    assert labels["org.opencontainers.image.version"] == tag
    assert labels["org.openlane-portal.base-image"] == f"docker://{recipe.fromHeader}"
    assert labels["org.openlane-portal.flow"] == path.stem


@pytest.mark.parametrize("path", DEF_FILES, ids=lambda p: p.name)
def test_environment_points_at_the_shared_pdk(path):
    environ = _recipe(path).environ
    assert "PDK_ROOT=/apps/pdks" in environ
    assert any(e.startswith("PDK=") for e in environ)
    tag = _recipe(path).fromHeader.rpartition(":")[2]
    assert f"OPENLANE_VERSION={tag}" in environ


@pytest.mark.parametrize("path", DEF_FILES, ids=lambda p: p.name)
def test_has_test_help_and_runscript_sections(path):
    recipe = _recipe(path)
    assert recipe.test is not None, "%test section missing"
    assert recipe.cmd, "%runscript missing"
    assert {"labels", "environment", "test", "help", "runscript"} <= _sections(path)
    tests = [line for line in recipe.install if "/tests.sh" in line]
    assert any("PDK_ROOT" in line for line in tests), "%test must check PDK_ROOT"
    help_text = path.read_text().split("%help", 1)[1]
    assert "/apps/pdks" in help_text and EXPECTED[path.name][2] in help_text


def test_readme_matches_the_definitions():
    readme = (SING_DIR / "README.md").read_text()
    for path in DEF_FILES:
        source = _recipe(path).fromHeader
        assert f"docker://{source}" in readme, f"README does not name {source}"
        assert EXPECTED[path.name][2] in readme
        assert path.name in readme
    for topic in ("apptainer build", "apptainer pull", "volare", "ciel", "/apps/pdks", "digest"):
        assert topic in readme, topic
