"""The Tcl reader (never runs Tcl), the arithmetic evaluator and Tcl quoting (proved with tclsh)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from portal.flows.designconfig import check_config, read_design_config
from portal.flows.tclconfig import (
    ExpressionError,
    UnresolvedReference,
    evaluate_expression,
    read_tcl_config,
    tcl_quote,
)

TCLSH = "/usr/bin/tclsh"
REPO_ROOT = Path(__file__).resolve().parents[2]
PROVIDED = {"DESIGN_DIR": "/d", "PDK": "sky130A", "STD_CELL_LIBRARY": "sky130_fd_sc_hd"}


def read(text: str, design_dir: Path | None = None):
    return read_tcl_config("config.tcl", text=text, provided=PROVIDED, design_dir=design_dir)


def test_words_quotes_braces_continuations_and_comments():
    result = read(
        "# a comment \\\n  that continues\n"
        "set ::env(A) 10 ; set env(B) {AREA 0}\n"
        'set ::env(C) "x $::env(A) \\\n    y"\n'
        "set ::env(D) {a {nested} $not_substituted [neither]}\n"
        'set ::env(E) "tab\\there \\u00e9 \\x41"\n'
        "set ::env(F) ${::env(DESIGN_DIR)}\n"
        "set ::env(G) $::env(PDK)_$::env(STD_CELL_LIBRARY)\n"
    )
    assert result.errors == []
    assert result.values == {
        "A": "10",
        "B": "AREA 0",
        "C": "x 10  y",
        "D": "a {nested} $not_substituted [neither]",
        "E": "tab\there é A",
        "G": "sky130A_sky130_fd_sc_hd",
    }
    assert [u.name for u in result.unresolved] == ["F"]  # ${::env(DESIGN_DIR)} is a plain var


def test_expr_is_evaluated_without_eval():
    result = read(
        "set ::env(CLOCK_PERIOD) 10\n"
        "set ::env(A) [expr {$::env(CLOCK_PERIOD) * 2 + 1}]\n"
        "set ::env(B) [expr $::env(CLOCK_PERIOD) / 4]\n"
        "set ::env(C) [expr {$::env(CLOCK_PERIOD) / 4.0}]\n"
        "set half [expr {$::env(CLOCK_PERIOD) / 2.0}]\n"
        "set ::env(D) [expr {max($half, 7) - -1}]\n"
        "set ::env(E) [expr {$::env(UNKNOWN) + 1}]\n"
        "set ::env(F) [expr {[exec touch pwned] + 1}]\n"
    )
    assert result.values["A"] == "21"
    assert result.values["B"] == "2"  # Tcl integer division
    assert result.values["C"] == "2.5"
    assert result.values["D"] == "8"  # max() returns the int argument, as in tclsh
    unresolved = {u.name: u.reason for u in result.unresolved}
    assert "UNKNOWN" in unresolved["E"]
    assert "F" in unresolved
    assert not Path("pwned").exists()


def test_commands_are_never_run(tmp_path):
    marker = tmp_path / "pwned"
    result = read(
        f"set ::env(A) [exec touch {marker}]\n"
        f"exec touch {marker}\n"
        f'set ::env(B) "[open {marker} w]"\n'
        f"if {{1}} {{ exec touch {marker}; set ::env(C) 1 }}\n"
    )
    assert not marker.exists()
    assert {u.name for u in result.unresolved} >= {"A", "B", "C", "exec", "if"}


def test_if_and_loops_make_their_assignments_unresolved():
    result = read(
        "set ::env(A) 1\n"
        'if {$::env(PDK) == "sky130A"} {\n'
        "    set ::env(A) 2\n"
        "} else {\n"
        "    foreach x {1 2} { append ::env(B) $x }\n"
        "    source other.tcl\n"
        "}\n"
        "set ::env(C) $::env(A)\n"
    )
    assert "A" not in result.values and "C" not in result.values
    lines = {(u.name, u.line) for u in result.unresolved}
    assert {("A", 3), ("B", 5), ("source", 6), ("if", 2), ("C", 8)} <= lines


def test_source_is_followed_only_inside_the_design_folder(tmp_path):
    design = tmp_path / "design"
    design.mkdir()
    (design / "sky130A_sky130_fd_sc_hd_config.tcl").write_text("set ::env(CLOCK_PERIOD) 12\n")
    (tmp_path / "outside.tcl").write_text("set ::env(SECRET) 1\n")
    text = (
        "set ::env(DESIGN_NAME) x\n"
        "source $::env(DESIGN_DIR)/$::env(PDK)_$::env(STD_CELL_LIBRARY)_config.tcl\n"
        f"source {tmp_path / 'outside.tcl'}\n"
        "source $::env(DESIGN_DIR)/../outside.tcl\n"
    )
    (design / "config.tcl").write_text(text)
    result = read_design_config(design / "config.tcl")
    assert result.values["CLOCK_PERIOD"] == "12"
    assert "SECRET" not in result.values
    assert [u.line for u in result.unresolved if u.name == "source"] == [3, 4]


def test_syntax_errors_carry_line_numbers(tmp_path):
    cases = {
        "set ::env(A) 1\nset ::env(B) {unbalanced\nset ::env(C) 3\n": (2, "missing close-brace"),
        'set ::env(A) 1\n\nset ::env(B) "open\n': (3, 'missing "'),
        "set ::env(A) {x}y\n": (1, "extra characters after close-brace"),
        "set ::env(A) [expr {1 + 2}\n": (1, "missing close-bracket"),
        "set ::env(A) 1 2\n": (1, "wrong # args"),
    }
    for text, (line, message) in cases.items():
        path = tmp_path / "config.tcl"
        path.write_text(text)
        report = check_config(path)
        assert not report.ok, text
        assert report.errors[0][0] == line, text
        assert message in report.errors[0][1], text
    # values before the error are still known
    assert read("set ::env(A) 1\nset ::env(B) {x\n").values == {"A": "1"}


def test_tclsh_agrees_with_the_reader(tmp_path):
    """Where the reader resolves a value, real Tcl computes the same one."""
    script = (
        "set ::env(A) 10\n"
        "set ::env(B) [expr {$::env(A) * 3 / 4}]\n"
        'set ::env(C) "v=$::env(B) \\\n   w"\n'
        "set ::env(D) {braces $x [y]}\n"
        "set ::env(E) [expr {2 ** 10 + 7 % 3 - -1}]\n"
        "set ::env(F) [expr {10 / 4.0 + round(2.5)}]\n"
        "set ::env(G) [file join $::env(DESIGN_DIR) src a.v]\n"
    )
    config = tmp_path / "config.tcl"
    config.write_text(script)
    names = ["A", "B", "C", "D", "E", "F", "G"]
    driver = tmp_path / "driver.tcl"
    driver.write_text(
        f"set ::env(DESIGN_DIR) /d\nsource {config}\n"
        + "".join(f'puts -nonewline "$::env({n})\\x00"\n' for n in names)
    )
    out = subprocess.run([TCLSH, str(driver)], capture_output=True, check=True).stdout
    real = dict(zip(names, out.decode().split("\x00")[:-1], strict=True))
    ours = read(script).values
    assert ours == real


# -- arithmetic -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("-2 ** 2", 4),  # Tcl: unary minus binds tighter
        ("2 ** 3 ** 2", 512),
        ("7 / 2", 3),
        ("-7 / 2", -4),
        ("7 % 3", 1),
        ("7 / 2.0", 3.5),
        ("1e3 + .5", 1000.5),
        ("0x10", 16),
        ("abs(-3) + min(4, 2) + max(1, 5) + int(2.9) + round(-2.5)", 9),
    ],
)
def test_tcl_arithmetic(text, expected):
    assert evaluate_expression(text) == expected


@pytest.mark.parametrize(
    "text",
    ["1 +", "(1", "1 / 0", "exec(1)", "[exec ls]", "2 ** 100000", "1 < 2", "", "$", "a.b"],
)
def test_arithmetic_rejects_what_it_cannot_do_safely(text):
    with pytest.raises(ExpressionError):
        evaluate_expression(text)


def test_openlane_expression_dialect():
    values = {"A": 45, "S": "str"}

    def lookup(name):
        if name not in values:
            raise UnresolvedReference(name)
        return values[name]

    assert evaluate_expression("($A + 5.0) / 100.0", lookup, dialect="openlane") == 0.5
    assert evaluate_expression("$A / 2", lookup, dialect="openlane") == 22.5
    with pytest.raises(ExpressionError):
        evaluate_expression("$A -1", lookup, dialect="openlane")  # "-1" is a number there
    with pytest.raises(ExpressionError):
        evaluate_expression("$S * 2", lookup, dialect="openlane")
    with pytest.raises(UnresolvedReference):
        evaluate_expression("$B * 2", lookup, dialect="openlane")
    with pytest.raises(ExpressionError):
        evaluate_expression("abs($A)", lookup, dialect="openlane")


# -- quoting ----------------------------------------------------------------------------------

HOSTILE = [
    "AREA 0",
    "$(touch pwned)",
    "]; exec touch pwned; [",
    "[exec touch pwned]",
    "$::env(HOME)",
    "{unbalanced",
    "unbalanced}",
    "}{",
    "back\\slash",
    "trailing\\",
    'quote " inside',
    "semi; colon",
    "new\nline",
    "\\\nexec touch pwned",
    "tab\tand é ü ☃",
    "{*}",
    "#comment",
    "",
    " leading and trailing ",
]


def test_tcl_quote_shapes():
    assert tcl_quote("AREA 0") == "{AREA 0}"
    assert tcl_quote("") == "{}"
    assert tcl_quote("$(touch x)") == "{$(touch x)}"
    assert tcl_quote("{x") == '"\\{x"'
    assert tcl_quote("é").isascii()
    with pytest.raises(ValueError):
        tcl_quote("nul\x00")
    with pytest.raises(ValueError):
        tcl_quote("\U0001f600")


def test_tcl_quote_round_trips_through_real_tclsh_and_runs_nothing(tmp_path):
    script = tmp_path / "values.tcl"
    lines = [f"set ::env(V{i}) {tcl_quote(v)}" for i, v in enumerate(HOSTILE)]
    script.write_text("\n".join(lines) + "\n", encoding="ascii")
    driver = tmp_path / "driver.tcl"
    outputs = [tmp_path / f"out{i}" for i in range(len(HOSTILE))]
    driver.write_text(
        f"source {script}\n"
        + "".join(
            f"set f [open {out} w]; fconfigure $f -encoding utf-8 -translation lf; "
            f"puts -nonewline $f $::env(V{i}); close $f\n"
            for i, out in enumerate(outputs)
        )
    )
    subprocess.run([TCLSH, str(driver)], cwd=tmp_path, check=True, capture_output=True)
    assert not (tmp_path / "pwned").exists()
    for value, out in zip(HOSTILE, outputs, strict=True):
        assert out.read_text(encoding="utf-8") == value
    # and the portal's own reader reads them back identically
    result = read_tcl_config(script, provided={})
    assert [result.values[f"V{i}"] for i in range(len(HOSTILE))] == HOSTILE


def test_commands_that_run_programs_are_warned_about_by_line(tmp_path):
    """Never run, but OpenLane 1 sources config.tcl as the job's user: say so, line by line."""
    text = (
        "set ::env(DESIGN_NAME) spm\n"
        "exec rm -rf ~\n"
        "set ::env(CLOCK_PERIOD) [exec cat /etc/hostname]\n"
        "if {1} {\n"
        "    set f [open /etc/passwd r]\n"
        "}\n"
        "set ::env(VERILOG_FILES) [file join $::env(DESIGN_DIR) src x.v]\n"
        "file delete -force /tmp/x\n"
        "puts [socket evil.example 80]\n"
    )
    result = read_tcl_config(tmp_path / "config.tcl", provided={"DESIGN_DIR": "/d"}, text=text)
    warned = [(line, msg.split("'")[1]) for line, msg in result.warnings if "runs it" in msg]
    assert warned == [(2, "exec"), (3, "exec"), (5, "open"), (8, "file delete"), (9, "socket")]
    assert all("as the job's user" in msg for _, msg in result.warnings if "runs it" in msg)
    assert result.values["DESIGN_NAME"] == "spm"  # and nothing was run: the reader has no exec


def test_the_real_tcl_config_has_no_such_warning():
    real = REPO_ROOT / "tests" / "data" / "openlane" / "openlane1" / "configs" / "xtea.tcl"
    result = read_tcl_config(real, provided={"DESIGN_DIR": "/d", "PDK": "sky130A"})
    assert not [m for _, m in result.warnings if "runs it" in m]
