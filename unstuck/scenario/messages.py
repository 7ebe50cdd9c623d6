"""One problem with a scenario file, as one line: the file, the field path, the value as
written with its type, the rule and the fix. Every check of a scenario (field types, the
cross-field rules, the advice) words its findings through `line`, so they all read alike:

    scenarios/x.yaml: faults[2].at = '5m' (str): expected seconds as a number; write 300
"""

from __future__ import annotations

import reprlib
from typing import Any


class ScenarioInvalid(ValueError):
    """A scenario file that cannot run; `problems` holds one message line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


VALUE_MAX = 80  # characters of a value echoed in a message
_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxlist, _repr.maxtuple, _repr.maxdict = 3, 8, 8, 6
_repr.maxstring, _repr.maxother = VALUE_MAX, VALUE_MAX


def cut(text: str, limit: int = VALUE_MAX) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


UNSHOWN = object()  # a problem's value when the field has none to echo (missing, a section)


def line(file: str, path: str, value: Any, rule: str, *, show_value: bool = True) -> str:
    if not show_value or isinstance(value, dict) or value is UNSHOWN:
        return f"{file}: {path}: {rule}"
    return f"{file}: {path} = {cut(_repr.repr(value))} ({type(value).__name__}): {rule}"
