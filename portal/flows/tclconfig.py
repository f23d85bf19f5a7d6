"""Tcl design configs, read without running Tcl; Tcl quoting; a safe arithmetic evaluator.

OpenLane 1 *sources* ``config.tcl``; the portal must never do that on its own host. This module
parses the file with Tcl's word rules (braces, quotes, ``\\`` escapes and line continuations,
``$var``/``$::env(NAME)``/``${name}`` and ``[command]`` substitution, ``#`` comments, ``;``)
and evaluates only what is side-effect free:

* ``set ::env(NAME) value`` (and ``env(NAME)``), plain ``set name value``, ``append``,
  ``lappend`` (simple elements) and ``unset``;
* ``$::env(NAME)`` references to values set earlier or provided by the flow (``DESIGN_DIR``,
  ``PDK``, ``STD_CELL_LIBRARY``, ``PDK_ROOT``, ``PDKPATH``, ``SCLPATH``);
* ``[expr ...]`` with plain arithmetic (:func:`evaluate_expression`: numbers, ``+ - * / % **``,
  parentheses, ``abs int double round floor ceil sqrt min max pow``; never ``eval``);
* ``[file join|dirname|tail|rootname|extension ...]`` (string operations only);
* ``source FILE`` when FILE resolves to a file inside the design folder (read, not run).

Everything else (``if``/``foreach``/``proc`` bodies, other commands, unknown variables) is
reported as :class:`~portal.flows.types.Unresolved`, never executed, never a crash. Syntax
errors Tcl itself would stop at (unbalanced braces/quotes/brackets, extra characters after a
close-brace) are reported with their line number.

Why not Tcl's own ``interp create -safe`` (tkinter, issue 16 item 7; prototype of 156 lines vs.
~690 here for parsing and evaluation): it passed 30 of the 33 reader tests (it runs ``if``
bodies, resolves ``${::env(X)}``, drops assignments after a failing command in a block); it
warns only about risky commands on branches taken (``if {$::env(PDK) == "gf180"} {exec ...}``:
none); a hostile config cost 1.25 s (``while 1 {}``, time limit), 278 MB (``string repeat``) or
killed the Python process (``append a $a`` in a loop: Tcl aborts, no memory limit), where this
reader takes < 0.3 ms and nothing grows; xtea.tcl took 2.05 ms vs. 0.26 ms (a 300-line ``expr``
chain 9.2 vs. 12.8 ms); and Debian's ``/usr/bin/python3`` (scripts/bootstrap, the Ansible
role) has no tkinter without ``python3-tk``.

:func:`tcl_quote` renders any string as one inert Tcl word (used for per-task Tcl configs).
"""

from __future__ import annotations

import math
import os
import re
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from portal.flows.types import Issue, Unresolved

# ----------------------------------------------------------------------------------------------
# Arithmetic
# ----------------------------------------------------------------------------------------------

Number = int | float
Dialect = Literal["tcl", "openlane"]

_MAX_EXPR_LEN = 4000
_MAX_DEPTH = 64
_MAX_INT_EXPONENT = 256


class ExpressionError(ValueError):
    """The expression is not plain arithmetic the portal can evaluate."""


class UnresolvedReference(ExpressionError):
    """The expression refers to a variable whose value is not known."""

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        super().__init__(message or f"${name} is not known")


_TCL_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# OpenLane's JSON expression engine: a leading '-' directly followed by a digit is part of the
# number (so "$A -1" is two values, an error there too).
_OL_NUMBER = re.compile(r"-?\d+\.?\d*")
_OL_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_TCL_VAR = re.compile(
    r"\$(?:\{(?P<braced>[^}]*)\}|(?P<name>(?:::)?[A-Za-z0-9_]+(?:::[A-Za-z0-9_]+)*)"
    r"(?:\((?P<index>[^)]*)\))?)"
)
_FUNC = re.compile(r"[a-z]+(?=\s*\()")
_OPS = ("**", "*", "/", "%", "+", "-", "(", ")", ",")
_FUNCTIONS: dict[str, tuple[int, int]] = {
    "abs": (1, 1),
    "int": (1, 1),
    "wide": (1, 1),
    "entier": (1, 1),
    "double": (1, 1),
    "round": (1, 1),
    "floor": (1, 1),
    "ceil": (1, 1),
    "sqrt": (1, 1),
    "pow": (2, 2),
    "min": (1, 64),
    "max": (1, 64),
}


@dataclass(frozen=True)
class _Tok:
    kind: Literal["num", "var", "op", "func"]
    text: str
    value: Number | None = None


def _parse_number(text: str) -> Number:
    if text.lower().startswith(("0x", "-0x")):
        return int(text, 16)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return float(text)


def _tokenize(text: str, dialect: Dialect) -> list[_Tok]:
    tokens: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if dialect == "openlane":
            if m := _OL_VAR.match(text, i):
                tokens.append(_Tok("var", m.group(1)))
                i = m.end()
            elif m := _OL_NUMBER.match(text, i):
                tokens.append(_Tok("num", m.group(0), _parse_number(m.group(0))))
                i = m.end()
            elif text.startswith("**", i):
                tokens.append(_Tok("op", "**"))
                i += 2
            elif ch in "*/+-()":
                tokens.append(_Tok("op", ch))
                i += 1
            else:
                raise ExpressionError(f"unexpected {text[i : i + 12]!r} in expression")
            continue
        if ch == "$":
            m = _TCL_VAR.match(text, i)
            if not m:
                raise ExpressionError("'$' without a variable name in expression")
            if m.group("braced") is not None:
                name = m.group("braced")
            else:
                name = m.group("name")
                if m.group("index") is not None:
                    name = f"{name}({m.group('index')})"
            tokens.append(_Tok("var", name))
            i = m.end()
        elif m := _TCL_NUMBER.match(text, i):
            tokens.append(_Tok("num", m.group(0), _parse_number(m.group(0))))
            i = m.end()
        elif m := _FUNC.match(text, i):
            tokens.append(_Tok("func", m.group(0)))
            i = m.end()
        else:
            for op in _OPS:
                if text.startswith(op, i):
                    tokens.append(_Tok("op", op))
                    i += len(op)
                    break
            else:
                raise ExpressionError(f"unsupported {text[i : i + 12]!r} in expression")
    return tokens


class _ExprParser:
    def __init__(
        self, tokens: list[_Tok], lookup: Callable[[str], object], dialect: Dialect
    ) -> None:
        self.tokens = tokens
        self.pos = 0
        self.lookup = lookup
        self.dialect = dialect
        self.depth = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take_op(self, *ops: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text in ops:
            self.pos += 1
            return tok.text
        return None

    def parse(self) -> Number:
        if not self.tokens:
            raise ExpressionError("expression is empty")
        value = self.additive()
        if self.peek() is not None:
            raise ExpressionError("expression does not reduce to one value")
        return value

    def additive(self) -> Number:
        value = self.multiplicative()
        while op := self.take_op("+", "-"):
            rhs = self.multiplicative()
            value = value + rhs if op == "+" else value - rhs
        return value

    def multiplicative(self) -> Number:
        value = self.power()
        ops = ("*", "/", "%") if self.dialect == "tcl" else ("*", "/")
        while op := self.take_op(*ops):
            rhs = self.power()
            value = _binary(op, value, rhs, self.dialect)
        return value

    def power(self) -> Number:
        base = self.unary()
        if self.take_op("**"):
            exponent = self.power()  # right-associative
            return _binary("**", base, exponent, self.dialect)
        return base

    def unary(self) -> Number:
        if self.dialect == "tcl":
            if self.take_op("-"):
                return -self.unary()
            if self.take_op("+"):
                return +self.unary()
        return self.primary()

    def primary(self) -> Number:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ExpressionError("expression is nested too deeply")
        try:
            tok = self.peek()
            if tok is None:
                raise ExpressionError("expression ends unexpectedly")
            self.pos += 1
            if tok.kind == "num":
                assert tok.value is not None
                return tok.value
            if tok.kind == "var":
                return _as_number(tok.text, self.lookup(tok.text), self.dialect)
            if tok.kind == "func":
                return self.call(tok.text)
            if tok.text == "(":
                value = self.additive()
                if not self.take_op(")"):
                    raise ExpressionError("missing ')' in expression")
                return value
            raise ExpressionError(f"unexpected {tok.text!r} in expression")
        finally:
            self.depth -= 1

    def call(self, name: str) -> Number:
        if name not in _FUNCTIONS:
            raise ExpressionError(f"function {name}() is not supported")
        if not self.take_op("("):
            raise ExpressionError(f"missing '(' after {name}")
        args: list[Number] = []
        if not self.take_op(")"):
            while True:
                args.append(self.additive())
                if self.take_op(")"):
                    break
                if not self.take_op(","):
                    raise ExpressionError(f"missing ',' or ')' in {name}()")
        low, high = _FUNCTIONS[name]
        if not low <= len(args) <= high:
            raise ExpressionError(f"wrong number of arguments to {name}()")
        return _call(name, args)


def _as_number(name: str, value: object, dialect: Dialect) -> Number:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and dialect == "tcl":
        text = value.strip()
        if _TCL_NUMBER.fullmatch(text) or re.fullmatch(r"[+-]" + _TCL_NUMBER.pattern, text):
            sign = -1 if text.startswith("-") else 1
            return sign * _parse_number(text.lstrip("+-"))
    raise ExpressionError(f"${name} is not a number: {value!r}")


def _binary(op: str, a: Number, b: Number, dialect: Dialect) -> Number:
    try:
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                raise ExpressionError("division by zero")
            if dialect == "tcl" and isinstance(a, int) and isinstance(b, int):
                return a // b  # Tcl integer division rounds toward -infinity
            return a / b
        if op == "%":
            if not (isinstance(a, int) and isinstance(b, int)):
                raise ExpressionError("'%' needs integer operands")
            if b == 0:
                raise ExpressionError("division by zero")
            return a % b
        if op == "**":
            if isinstance(a, int) and isinstance(b, int):
                if b < 0:
                    if a == 0:
                        raise ExpressionError("zero to a negative power")
                    return a**b if abs(a) == 1 else 0
                if b > _MAX_INT_EXPONENT:
                    raise ExpressionError("exponent too large")
                return a**b
            result = float(a) ** float(b)
            if isinstance(result, complex):
                raise ExpressionError("complex result")
            return result
    except OverflowError as exc:
        raise ExpressionError("number too large") from exc
    raise ExpressionError(f"unsupported operator {op}")


def _call(name: str, args: list[Number]) -> Number:
    x = args[0]
    try:
        if name == "abs":
            return abs(x)
        if name in ("int", "wide", "entier"):
            return int(x)
        if name == "double":
            return float(x)
        if name == "round":
            return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)
        if name == "floor":
            return float(math.floor(x))
        if name == "ceil":
            return float(math.ceil(x))
        if name == "sqrt":
            if x < 0:
                raise ExpressionError("sqrt of a negative number")
            return math.sqrt(x)
        if name == "pow":
            return float(x) ** float(args[1])
        if name == "min":
            return min(args)
        if name == "max":
            return max(args)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, ExpressionError):
            raise
        raise ExpressionError(f"{name}(): {exc}") from exc
    raise ExpressionError(f"function {name}() is not supported")


def evaluate_expression(
    text: str,
    lookup: Callable[[str], object] | None = None,
    *,
    dialect: Dialect = "tcl",
) -> Number:
    """Evaluate plain arithmetic safely (a hand-written parser; nothing is ever ``eval``-ed).

    ``dialect="tcl"``: Tcl ``expr`` syntax (``$::env(X)``, ``$x``, ``${x}``, unary minus,
    ``%``, functions, integer division for two integers). ``dialect="openlane"``: OpenLane's
    JSON ``expr::`` engine (``$NAME``, ``+ - * / **`` and parentheses only). ``lookup`` returns
    a variable's value or raises :class:`UnresolvedReference`.
    """
    if len(text) > _MAX_EXPR_LEN:
        raise ExpressionError("expression is too long")

    def no_lookup(name: str) -> object:
        raise UnresolvedReference(name)

    tokens = _tokenize(text, dialect)
    return _ExprParser(tokens, lookup or no_lookup, dialect).parse()


def uses_binary_minus(text: str) -> bool:
    """True if an OpenLane ``expr::`` uses binary '-', which OpenLane 1/2 evaluate as '+'."""
    try:
        tokens = _tokenize(text, "openlane")
    except ExpressionError:
        return False
    return any(t.kind == "op" and t.text == "-" for t in tokens)


def format_tcl_number(value: Number) -> str:
    """A number as Tcl prints it (``12``, ``2.5``, ``1e+20``)."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return f"{value:.1f}"
    return repr(value)


# ----------------------------------------------------------------------------------------------
# Quoting
# ----------------------------------------------------------------------------------------------

_BRACE_SAFE = re.compile(r"^[\x20-\x7e]+$")


def tcl_quote(value: str) -> str:
    """Render ``value`` as exactly one Tcl word with no substitution at all.

    Printable ASCII without braces or backslashes is wrapped in braces (``{AREA 0}``: nothing
    inside braces is substituted). Anything else becomes a double-quoted word in which every
    character Tcl treats specially (``\\ $ [ ] " { } ;``) is backslash-escaped and control or
    non-ASCII characters are written as ``\\uXXXX``, so the file stays ASCII. NUL and characters
    beyond U+FFFF are refused (ValueError).
    """
    if value == "":
        return "{}"
    if _BRACE_SAFE.match(value) and not any(c in value for c in "{}\\"):
        return "{" + value + "}"
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '\\$[]"{};':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif code == 0:
            raise ValueError("NUL characters cannot be passed to OpenLane")
        elif code > 0xFFFF:
            raise ValueError(f"character U+{code:X} is not supported in Tcl values")
        elif code < 0x20 or code >= 0x7F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------


class TclSyntaxError(Exception):
    """Tcl could not parse the file (the message says why, ``line`` where)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


@dataclass
class _Var:
    name: str
    index: list[_Part] | None


@dataclass
class _Subst:
    commands: list[_Command]
    line: int


_Part = str | _Var | _Subst


@dataclass
class _Word:
    parts: list[_Part]
    braced: bool
    raw: str
    line: int
    expand: bool = False


@dataclass
class _Command:
    words: list[_Word]
    line: int


_SPACE = " \t\f\v\r"
_NAME_CHARS = re.compile(r"(?:::)?[A-Za-z0-9_]+(?:::[A-Za-z0-9_]+)*")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class _Parser:
    """Tcl word splitting for one script text (recursive for ``[...]``)."""

    def __init__(self, text: str, first_line: int = 1) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.first_line = first_line
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def line_at(self, index: int) -> int:
        return self.first_line + bisect_right(self._newlines, index - 1)

    def error(self, index: int, message: str) -> TclSyntaxError:
        return TclSyntaxError(self.line_at(index), message)

    # -- scripts and commands --
    def parse_script(self, nested: bool = False) -> list[_Command]:
        commands: list[_Command] = []
        start = self.i
        while True:
            self._skip_separators()
            if self.i >= self.n:
                if nested:
                    raise self.error(start, "missing close-bracket")
                return commands
            ch = self.s[self.i]
            if nested and ch == "]":
                self.i += 1
                return commands
            if ch == "#":
                self._skip_comment()
                continue
            command = self._parse_command(nested)
            if command.words:
                commands.append(command)

    def _skip_separators(self) -> None:
        while self.i < self.n:
            ch = self.s[self.i]
            if ch in _SPACE or ch in "\n;":
                self.i += 1
            elif self.s.startswith("\\\n", self.i):
                self.i += 2
            else:
                return

    def _skip_comment(self) -> None:
        while self.i < self.n:
            ch = self.s[self.i]
            if ch == "\\" and self.i + 1 < self.n:
                self.i += 2
                continue
            self.i += 1
            if ch == "\n":
                return

    def _parse_command(self, nested: bool) -> _Command:
        line = self.line_at(self.i)
        words: list[_Word] = []
        while True:
            while self.i < self.n and (
                self.s[self.i] in _SPACE or self.s.startswith("\\\n", self.i)
            ):
                self.i += 2 if self.s[self.i] == "\\" else 1
            if self.i >= self.n:
                break
            ch = self.s[self.i]
            if ch in "\n;":
                self.i += 1
                break
            if nested and ch == "]":
                break
            words.append(self._parse_word(nested))
        return _Command(words, line)

    def _parse_word(self, nested: bool) -> _Word:
        start = self.i
        line = self.line_at(start)
        expand = False
        after = self.s[self.i + 3] if self.i + 3 < self.n else "\n"
        if self.s.startswith("{*}", self.i) and after not in _SPACE + "\n;" + (
            "]" if nested else ""
        ):
            expand = True
            self.i += 3
        ch = self.s[self.i]
        if ch == "{":
            text = self._parse_braced()
            self._check_word_end(nested, "close-brace")
            return _Word([text], True, text, line, expand)
        if ch == '"':
            parts = self._parse_quoted()
            self._check_word_end(nested, "close-quote")
            return _Word(parts, False, self.s[start : self.i], line, expand)
        parts = self._parse_bare(nested)
        return _Word(parts, False, self.s[start : self.i], line, expand)

    def _check_word_end(self, nested: bool, what: str) -> None:
        if self.i >= self.n:
            return
        ch = self.s[self.i]
        if ch in _SPACE or ch in "\n;" or (nested and ch == "]"):
            return
        if self.s.startswith("\\\n", self.i):
            return
        raise self.error(self.i, f"extra characters after {what}")

    def _parse_braced(self) -> str:
        start = self.i
        self.i += 1
        depth = 1
        buf: list[str] = []
        while self.i < self.n:
            ch = self.s[self.i]
            if ch == "\\" and self.i + 1 < self.n:
                if self.s[self.i + 1] == "\n":
                    self.i += 2
                    while self.i < self.n and self.s[self.i] in " \t":
                        self.i += 1
                    buf.append(" ")
                    continue
                buf.append(self.s[self.i : self.i + 2])
                self.i += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    self.i += 1
                    return "".join(buf)
            buf.append(ch)
            self.i += 1
        raise self.error(start, "missing close-brace")

    def _parse_quoted(self) -> list[_Part]:
        start = self.i
        self.i += 1
        parts: list[_Part] = []
        while self.i < self.n:
            ch = self.s[self.i]
            if ch == '"':
                self.i += 1
                return _merge(parts)
            parts.append(self._parse_special(ch))
        raise self.error(start, 'missing "')

    def _parse_bare(self, nested: bool) -> list[_Part]:
        parts: list[_Part] = []
        while self.i < self.n:
            ch = self.s[self.i]
            if ch in _SPACE or ch in "\n;" or (nested and ch == "]"):
                break
            if self.s.startswith("\\\n", self.i):
                break
            parts.append(self._parse_special(ch))
        return _merge(parts)

    def _parse_special(self, ch: str) -> _Part:
        if ch == "\\":
            return self._parse_backslash()
        if ch == "$":
            return self._parse_dollar()
        if ch == "[":
            line = self.line_at(self.i)
            self.i += 1
            return _Subst(self.parse_script(nested=True), line)
        self.i += 1
        return ch

    def _parse_backslash(self) -> str:
        s, i = self.s, self.i
        if i + 1 >= self.n:
            self.i += 1
            return "\\"
        nxt = s[i + 1]
        if nxt == "\n":
            j = i + 2
            while j < self.n and s[j] in " \t":
                j += 1
            self.i = j
            return " "
        if nxt in _SIMPLE_ESCAPES:
            self.i += 2
            return _SIMPLE_ESCAPES[nxt]
        for prefix, digits in (("x", 2), ("u", 4), ("U", 8)):
            if nxt == prefix:
                m = re.compile(rf"[0-9a-fA-F]{{1,{digits}}}").match(s, i + 2)
                if m:
                    self.i = m.end()
                    code = int(m.group(0), 16)
                    return chr(code) if code <= 0x10FFFF else "\ufffd"
        m = re.compile(r"[0-7]{1,3}").match(s, i + 1)
        if m:
            self.i = m.end()
            return chr(int(m.group(0), 8) & 0xFF)
        self.i += 2
        return nxt

    def _parse_dollar(self) -> _Part:
        s = self.s
        start = self.i
        self.i += 1
        if self.i < self.n and s[self.i] == "{":
            end = s.find("}", self.i)
            if end == -1:
                raise self.error(start, "missing close-brace for variable name")
            name = s[self.i + 1 : end]
            self.i = end + 1
            return _Var(name, None)
        m = _NAME_CHARS.match(s, self.i)
        if not m:
            return "$"
        self.i = m.end()
        name = m.group(0)
        if self.i < self.n and s[self.i] == "(":
            self.i += 1
            index: list[_Part] = []
            while self.i < self.n and s[self.i] != ")":
                index.append(self._parse_special(s[self.i]))
            if self.i >= self.n:
                raise self.error(start, f"missing ) in variable reference ${name}(")
            self.i += 1
            return _Var(name, _merge(index))
        return _Var(name, None)


def _merge(parts: list[_Part]) -> list[_Part]:
    out: list[_Part] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        else:
            out.append(part)
    return out


def parse_tcl(text: str) -> tuple[list[_Command], TclSyntaxError | None]:
    """Split a Tcl script into commands; on a syntax error, the commands before it + the error."""
    parser = _Parser(text)
    commands: list[_Command] = []
    while True:
        parser._skip_separators()
        if parser.i >= parser.n:
            return commands, None
        if parser.s[parser.i] == "#":
            parser._skip_comment()
            continue
        try:
            command = parser._parse_command(nested=False)
        except TclSyntaxError as exc:
            return commands, exc
        if command.words:
            commands.append(command)


# ----------------------------------------------------------------------------------------------
# Evaluation (of the side-effect-free subset)
# ----------------------------------------------------------------------------------------------

_ENV_TARGET = re.compile(r"^(?:::)?env\((.+)\)$")
_SIMPLE_ELEMENT = re.compile(r'^[^\s{}\\"\[\]$;]+$')
_IGNORED_COMMANDS = frozenset({"puts", "package", "global", "variable", "namespace", "return"})
_BLOCK_COMMANDS = frozenset(
    {"if", "foreach", "for", "while", "switch", "catch", "proc", "try", "eval", "uplevel"}
)
_MAX_SOURCE_DEPTH = 8


class _Unknown(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass
class TclReadResult:
    """What a Tcl config sets, as far as it can be known without running it."""

    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int | None] = field(default_factory=dict)
    names: list[tuple[str, int | None]] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    sourced: list[Path] = field(default_factory=list)


class _Evaluator:
    def __init__(self, provided: Mapping[str, str], design_dir: Path | None) -> None:
        self.provided = dict(provided)
        self.design_dir = design_dir
        self.env: dict[str, str] = {}
        self.unknown_env: set[str] = set()
        self.locals: dict[str, str] = {}
        self.unknown_locals: set[str] = set()
        self.result = TclReadResult()
        self.depth = 0

    # -- substitution --
    def word(self, word: _Word) -> str:
        if word.expand:
            raise _Unknown("{*} expansion is not evaluated")
        if word.braced:
            return word.raw
        return self.parts(word.parts)

    def parts(self, parts: list[_Part]) -> str:
        return "".join(self.part(p) for p in parts)

    def part(self, part: _Part) -> str:
        if isinstance(part, str):
            return part
        if isinstance(part, _Var):
            return self.variable(part)
        return self.command_value(part.commands)

    def variable(self, var: _Var) -> str:
        name = var.name[2:] if var.name.startswith("::") else var.name
        if var.index is not None:
            index = self.parts(var.index)
            if name != "env":
                raise _Unknown(f"array variable ${name}({index}) is not evaluated")
            return self.env_value(index)
        if name in self.locals:
            return self.locals[name]
        if name in self.unknown_locals:
            raise _Unknown(f"${name} is not known statically")
        raise _Unknown(f"${name} is not set before it is used")

    def env_value(self, key: str) -> str:
        if key in self.env:
            return self.env[key]
        if key in self.unknown_env:
            raise _Unknown(f"$::env({key}) is not known statically")
        if key in self.provided:
            return self.provided[key]
        raise _Unknown(f"$::env({key}) comes from the flow or PDK defaults")

    def expr_lookup(self, name: str) -> object:
        m = re.fullmatch(r"(?:::)?env\((.+)\)", name)
        try:
            if m:
                return self.env_value(m.group(1))
            return self.variable(_Var(name, None))
        except _Unknown as exc:
            raise UnresolvedReference(name, exc.reason) from None

    def command_value(self, commands: list[_Command]) -> str:
        if len(commands) != 1:
            raise _Unknown("a multi-command substitution is not evaluated")
        words = commands[0].words
        head = self.word(words[0])
        if head == "expr":
            text = " ".join(w.raw if w.braced else self.word(w) for w in words[1:])
            try:
                return format_tcl_number(evaluate_expression(text, self.expr_lookup))
            except UnresolvedReference as exc:
                raise _Unknown(str(exc)) from None
            except ExpressionError as exc:
                raise _Unknown(f"[expr {text}] is not plain arithmetic ({exc})") from None
        if head == "file" and len(words) >= 3:
            sub = self.word(words[1])
            args = [self.word(w) for w in words[2:]]
            if sub == "join":
                return os.path.join(*args)
            if len(args) == 1:
                path = args[0]
                if sub == "dirname":
                    return os.path.dirname(path.rstrip("/")) or "."
                if sub == "tail":
                    return os.path.basename(path.rstrip("/"))
                if sub == "rootname":
                    return os.path.splitext(path)[0]
                if sub == "extension":
                    return os.path.splitext(path)[1]
        raise _Unknown(f"[{head} ...] is not evaluated")

    # -- statements --
    def run(self, commands: list[_Command]) -> None:
        for command in commands:
            try:
                self.statement(command)
            except _Unknown as exc:
                self.result.unresolved.append(
                    Unresolved(self._head(command), command.line, exc.reason)
                )

    def _head(self, command: _Command) -> str:
        return _literal(command.words[0]) or command.words[0].raw

    def statement(self, command: _Command) -> None:
        words = command.words
        head = self.word(words[0])
        line = command.line
        if head == "set":
            if len(words) == 2:
                return
            if len(words) != 3:
                self.result.errors.append((line, 'wrong # args: should be "set varName ?value?"'))
                return
            self.assign(self.word(words[1]), words[2], line)
        elif head in ("append", "lappend"):
            if len(words) < 2:
                self.result.errors.append((line, f"wrong # args: {head} needs a variable name"))
                return
            self.append(head, self.word(words[1]), words[2:], line)
        elif head == "unset":
            for w in words[1:]:
                target = self.word(w)
                if target in ("-nocomplain", "--"):
                    continue
                self.forget(target)
        elif head == "source":
            self.source(words, line)
        elif head in _BLOCK_COMMANDS:
            self.block(head, words, line)
        elif head in _IGNORED_COMMANDS:
            return
        else:
            raise _Unknown(f"command '{head}' is not evaluated")

    def _target(self, target: str) -> tuple[bool, str]:
        m = _ENV_TARGET.match(target)
        if m:
            return True, m.group(1)
        return False, target[2:] if target.startswith("::") else target

    def _note_env(self, key: str, line: int) -> None:
        self.result.names.append((key, line))
        self.result.lines[key] = line

    def _set(self, target: str, value: str | None, line: int, reason: str = "") -> None:
        is_env, key = self._target(target)
        if is_env:
            self._note_env(key, line)
            if value is None:
                self.env.pop(key, None)
                self.unknown_env.add(key)
                self.result.unresolved.append(Unresolved(key, line, reason))
            else:
                self.env[key] = value
                self.unknown_env.discard(key)
        elif value is None:
            self.locals.pop(key, None)
            self.unknown_locals.add(key)
        else:
            self.locals[key] = value
            self.unknown_locals.discard(key)

    def assign(self, target: str, word: _Word, line: int) -> None:
        try:
            value: str | None = self.word(word)
            reason = ""
        except _Unknown as exc:
            value, reason = None, exc.reason
        self._set(target, value, line, reason)

    def append(self, head: str, target: str, words: list[_Word], line: int) -> None:
        is_env, key = self._target(target)
        try:
            current = (self.env_value(key) if is_env else self.variable(_Var(key, None))) or ""
        except _Unknown:
            unknown = self.unknown_env | set(self.provided) if is_env else self.unknown_locals
            current = None if key in unknown else ""
        try:
            items = [self.word(w) for w in words]
            if current is None:
                raise _Unknown(f"{head} to a value that is not known statically")
            if head == "append":
                value = current + "".join(items)
            else:
                if not all(_SIMPLE_ELEMENT.match(item) for item in items):
                    raise _Unknown("lappend of a value that needs Tcl list quoting")
                value = " ".join([current, *items]) if current else " ".join(items)
            self._set(target, value, line)
        except _Unknown as exc:
            self._set(target, None, line, exc.reason)

    def forget(self, target: str) -> None:
        is_env, key = self._target(target)
        if is_env:
            self.env.pop(key, None)
            self.unknown_env.discard(key)
        else:
            self.locals.pop(key, None)
            self.unknown_locals.discard(key)

    def source(self, words: list[_Word], line: int) -> None:
        if len(words) != 2:
            raise _Unknown("source with options is not followed")
        path = Path(self.word(words[1]))
        if self.design_dir is None:
            raise _Unknown(f"source {path} is not followed")
        real = os.path.realpath(path)
        root = os.path.realpath(self.design_dir)
        if not real.startswith(root + os.sep):
            raise _Unknown(f"source {path} is outside the design folder; not followed")
        if not os.path.isfile(real):
            raise _Unknown(f"source {path}: no such file in the design folder")
        if self.depth >= _MAX_SOURCE_DEPTH:
            raise _Unknown(f"source {path}: sources nested too deeply")
        try:
            text = Path(real).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _Unknown(f"source {path}: cannot read ({exc})") from None
        commands, error = parse_tcl(text)
        self.result.sourced.append(path)
        self.depth += 1
        try:
            self.run(commands)
        finally:
            self.depth -= 1
        if error is not None:
            self.result.errors.append((line, f"in sourced {path.name}: {error}"))

    def block(self, head: str, words: list[_Word], line: int) -> None:
        """Bodies of if/foreach/proc... are not run: their assignments become unknown."""
        found: list[tuple[str, str, int]] = []
        for word in words[1:]:
            if word.braced or (len(word.parts) == 1 and isinstance(word.parts[0], str)):
                _collect_effects(word.raw, word.line, found, 0)
        reason = f"inside '{head}' (the portal does not evaluate conditions or loops)"
        assignments = 0
        for kind, target, set_line in found:
            if kind == "source":
                self.result.unresolved.append(
                    Unresolved("source", set_line, f"source {target} {reason}; not followed")
                )
            else:
                assignments += 1
                self._set(target, None, set_line, f"set {reason}")
        raise _Unknown(f"'{head}' block not evaluated ({assignments} assignment(s) inside)")


def _literal(word: _Word) -> str | None:
    if word.braced:
        return word.raw
    if all(isinstance(p, str) for p in word.parts):
        return "".join(p for p in word.parts if isinstance(p, str))
    return None


def _collect_effects(
    text: str, first_line: int, out: list[tuple[str, str, int]], depth: int
) -> None:
    """Find ``set/append/lappend <literal target>`` and ``source`` in a block body, recursively."""
    if depth > 8:
        return
    try:
        commands = _Parser(text, first_line).parse_script()
    except TclSyntaxError:
        return
    for command in commands:
        words = command.words
        head = _literal(words[0])
        if head in ("set", "append", "lappend") and len(words) >= 3:
            target = _literal(words[1])
            if target is not None:
                out.append(("set", target, command.line))
        elif head == "source" and len(words) >= 2:
            out.append(("source", words[-1].raw, command.line))
        for word in words[1:]:
            if word.braced:
                _collect_effects(word.raw, word.line, out, depth + 1)


#: Commands that reach outside the config when OpenLane sources it (as the job's user).
RUNS_PROGRAMS = frozenset(
    {"exec", "open", "socket", "file", "cd", "exit", "eval", "uplevel", "load", "interp",
     "after", "vwait", "fconfigure", "chan", "encoding", "rename", "proc"}
)  # fmt: skip
#: ``file`` subcommands that only compute names or look (``file exists`` is common in configs).
_PURE_FILE = frozenset(
    {"dirname", "tail", "rootname", "extension", "join", "split", "exists", "isfile",
     "isdirectory", "readable", "writable", "executable", "normalize", "nativename", "size",
     "type", "pathtype"}
)  # fmt: skip


def risky_commands(commands: list[_Command], depth: int = 0) -> list[tuple[int, str]]:
    """``(line, command)`` for each command in ``commands`` (and in their ``[...]``
    substitutions and braced bodies, recursively) that would run a program, touch files or
    sockets, or run code built at run time when OpenLane sources the config."""
    found: list[tuple[int, str]] = []
    if depth > 16:
        return found
    for command in commands:
        head = _literal(command.words[0])
        if head in RUNS_PROGRAMS:
            sub = _literal(command.words[1]) if len(command.words) > 1 else None
            if not (head == "file" and sub in _PURE_FILE):
                found.append(
                    (command.line, head if head != "file" else f"file {sub or ''}".strip())
                )
        for word in command.words:
            for part in word.parts:
                if isinstance(part, _Subst):
                    found += risky_commands(part.commands, depth + 1)
            if word.braced and word is not command.words[0]:
                try:
                    body = _Parser(word.raw, word.line).parse_script()
                except TclSyntaxError:
                    continue
                found += risky_commands(body, depth + 1)
    return found


def read_tcl_config(
    path: Path | str,
    *,
    provided: Mapping[str, str],
    design_dir: Path | None = None,
    text: str | None = None,
) -> TclReadResult:
    """Read a Tcl config's ``::env`` assignments without running it.

    ``provided`` holds the values the flow sets before sourcing the config (``DESIGN_DIR``,
    ``PDK``...). ``source`` is followed only for files inside ``design_dir``.
    """
    path = Path(path)
    if text is None:
        text = path.read_text(encoding="utf-8")
    evaluator = _Evaluator(provided, design_dir)
    commands, error = parse_tcl(text)
    evaluator.run(commands)
    result = evaluator.result
    for line, head in sorted(set(risky_commands(commands))):
        result.warnings.append(
            (
                line,
                f"'{head}' is not run by the portal, but OpenLane runs it as the job's user "
                "when it loads this config",
            )
        )
    if error is not None:
        result.errors.append((error.line, error.message))
    result.values = dict(evaluator.env)
    return result
