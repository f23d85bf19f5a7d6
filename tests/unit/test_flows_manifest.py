"""The openlane-portal.yaml repository manifest: validation and use by find_design."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from portal.flows.manifest import ManifestError, load_repo_manifest, parse_manifest
from portal.flows.openlane1 import OpenLane1
from portal.flows.openlane2 import OpenLane2
from portal.flows.types import DesignNotFound

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / "tests" / "data" / "openlane" / "openlane1" / "configs"

FULL = """\
version: 1
design: hw/openlane/spm
config: spm.json
flow: openlane2
image: /apps/openlane/ol2-2024.sif
pdk: sky130A
scl: sky130_fd_sc_hs
parameters:
  CLOCK_PERIOD: 12
  SYNTH_STRATEGY: AREA 0
  VERILOG_DEFINES: [A, B]
sweep:
  mode: grid
  parameters:
    CLOCK_PERIOD: [10, 12, 15]
description: Serial-parallel multiplier
"""


def test_a_full_manifest():
    manifest = parse_manifest(FULL)
    assert manifest.design == "hw/openlane/spm"
    assert manifest.config == "spm.json"
    assert manifest.flow == "openlane2"
    assert manifest.image == "/apps/openlane/ol2-2024.sif"
    assert (manifest.pdk, manifest.scl) == ("sky130A", "sky130_fd_sc_hs")
    assert manifest.parameters == {
        "CLOCK_PERIOD": 12,
        "SYNTH_STRATEGY": "AREA 0",
        "VERILOG_DEFINES": ["A", "B"],
    }
    assert manifest.sweep == {"mode": "grid", "parameters": {"CLOCK_PERIOD": [10, 12, 15]}}
    assert manifest.to_dict()["description"] == "Serial-parallel multiplier"


def test_minimal_manifest_and_the_root_folder():
    assert parse_manifest("design: designs/spm\n").design == "designs/spm"
    assert parse_manifest("design: ./designs//spm/\n").design == "designs/spm"
    assert parse_manifest("design: .\n").design == ""


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("design: x\nflwo: openlane1\n", 2, "unknown key 'flwo'"),
        ("design: x\nflow: openlane3\n", 2, "'flow' must be one of"),
        ("flow: openlane1\n", None, "'design'"),
        ("design: /abs/path\n", 1, "relative"),
        ("design: ../outside\n", 1, "inside the repository"),
        ("design: a/../../outside\n", 1, "inside the repository"),
        ("design: x\nconfig: ../config.json\n", 2, "'config'"),
        ("design: x\nconfig: config.txt\n", 2, "'config'"),
        ("design: x\nversion: 2\n", 2, "unsupported version"),
        ("design: x\nparameters: [1, 2]\n", 2, "mapping"),
        ("design: x\nparameters:\n  clock: 1\n", 2, "invalid parameter name"),
        ("design: x\nparameters:\n  A: {b: 1}\n", 2, "scalars"),
        ("design: x\nsweep: [1]\n", 2, "'sweep' must be a mapping"),
        ("design: x\nimage: --bind=/\n", 2, "invalid image"),
        ("design: x\npdk: 'sky130A; rm'\n", 2, "invalid pdk"),
        ("design: x\n  bad: indent\n", 2, "malformed YAML"),
        ("- a\n- b\n", None, "mapping"),
    ],
)
def test_invalid_manifests_name_the_line(text, line, fragment):
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    errors = info.value.errors
    assert any(fragment in message for _, message in errors), errors
    if line is not None:
        assert any(ln == line for ln, message in errors if fragment in message), errors


def test_all_errors_are_reported_at_once():
    with pytest.raises(ManifestError) as info:
        parse_manifest("design: x\nflow: nope\ncolour: red\n")
    assert len(info.value.errors) == 2
    assert "line 2" in str(info.value) and "line 3" in str(info.value)


def test_json_manifest(tmp_path):
    (tmp_path / "openlane-portal.json").write_text('{"design": "d", "flow": "openlane1"}')
    manifest = load_repo_manifest(tmp_path)
    assert manifest is not None and manifest.flow == "openlane1"
    (tmp_path / "openlane-portal.json").write_text('{"design": "d",\n "flow": }')
    with pytest.raises(ManifestError, match="line 2"):
        load_repo_manifest(tmp_path)


def test_two_manifests_are_an_error(tmp_path):
    (tmp_path / "openlane-portal.yaml").write_text("design: a\n")
    (tmp_path / "openlane-portal.yml").write_text("design: b\n")
    with pytest.raises(ManifestError, match="more than one manifest"):
        load_repo_manifest(tmp_path)


def test_no_manifest(tmp_path):
    assert load_repo_manifest(tmp_path) is None


def custom_layout(root: Path) -> Path:
    design = root / "hw" / "openlane" / "spm"
    (design / "src").mkdir(parents=True)
    (design / "src" / "spm.v").write_text("//\n")
    shutil.copyfile(CONFIGS / "spm.json", design / "spm.json")
    return root


def test_find_design_follows_the_manifest(tmp_path):
    repo = custom_layout(tmp_path)
    (repo / "openlane-portal.yaml").write_text(FULL)
    design = OpenLane2().find_design(repo, "")
    assert design.path == repo / "hw/openlane/spm/spm.json"
    assert design.manifest is not None and design.manifest.flow == "openlane2"
    assert (design.pdk, design.scl) == ("sky130A", "sky130_fd_sc_hs")
    assert design.values["CLOCK_PERIOD"] == 8  # the scl::sky130_fd_sc_hs block applied
    assert design.file_name == "spm.json"
    # the same folder named explicitly still uses the manifest's config name
    assert OpenLane2().find_design(repo, "hw/openlane/spm").path.name == "spm.json"
    # an explicit other folder ignores the manifest's config name and PDK choice
    other = repo / "other"
    other.mkdir()
    shutil.copyfile(CONFIGS / "gcd.json", other / "config.json")
    design = OpenLane1().find_design(repo, "other")
    assert design.path == other / "config.json"
    assert design.pdk is None


def test_manifest_pointing_at_nothing_says_what_was_tried(tmp_path):
    repo = custom_layout(tmp_path)
    (repo / "openlane-portal.yaml").write_text("design: hw/openlane/spm\nconfig: missing.json\n")
    with pytest.raises(DesignNotFound) as info:
        OpenLane1().find_design(repo, "")
    assert info.value.looked_for == [repo / "hw/openlane/spm/missing.json"]
    assert "missing.json" in str(info.value)


def test_broken_manifest_stops_find_design(tmp_path):
    repo = custom_layout(tmp_path)
    (repo / "openlane-portal.yaml").write_text("design: hw/openlane/spm\nflow: [x]\n")
    with pytest.raises(ManifestError, match="line 2"):
        OpenLane1().find_design(repo, "hw/openlane/spm")


def test_manifest_symlinked_out_of_the_repository_is_refused(tmp_path):
    repo = custom_layout(tmp_path / "repo")
    outside = tmp_path / "outside.yaml"
    outside.write_text("design: hw/openlane/spm\n")
    (repo / "openlane-portal.yaml").symlink_to(outside)
    with pytest.raises(ManifestError, match="outside the repository"):
        load_repo_manifest(repo)
