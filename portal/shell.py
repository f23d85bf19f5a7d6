"""Shell quoting for everything that reaches a shell (sbatch scripts, ssh command lines).

A rendered command is a list of *words*. A plain string is a literal and is always quoted;
a :class:`ShellVar` refers to a variable the script itself defines (``TASK_DIR``...) and is
expanded inside double quotes, with an optional literal suffix quoted after it. Nothing
user-supplied can become shell syntax this way.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

_VAR_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


@dataclass(frozen=True)
class ShellVar:
    """A reference to a script variable, e.g. ``ShellVar("TASK_DIR", "/config.json")``."""

    name: str
    suffix: str = ""

    def __post_init__(self) -> None:
        if not _VAR_NAME.fullmatch(self.name):
            raise ValueError(f"not a shell variable name: {self.name!r}")


Word = str | ShellVar


def shquote(value: object) -> str:
    """Quote one value for a POSIX shell (the ``shquote`` Jinja filter)."""
    return shlex.quote(str(value))


def shword(word: Word) -> str:
    """Render one word: literals quoted, variables expanded in double quotes."""
    if isinstance(word, ShellVar):
        rendered = f'"${{{word.name}}}"'
        return rendered + shquote(word.suffix) if word.suffix else rendered
    return shquote(word)


def shjoin(words: Iterable[Word]) -> str:
    """Render a command line from words (the ``shjoin`` Jinja filter)."""
    return " ".join(shword(word) for word in words)
