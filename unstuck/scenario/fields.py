"""The field types of a scenario file: what each kind of value accepts, and the message when
it does not. They are stricter than pydantic's own (a bool is no number, `'5m'` is no seconds)
because a scenario that means something else than it says runs, and proves the wrong thing."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from unstuck.scenario.yamlfile import read_yaml

_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def _as_seconds_hint(text: str) -> str:
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text.strip().lower())
    joined = "".join(f"{n}{u}" for n, u in parts)
    if parts and joined == re.sub(r"\s+", "", text.strip().lower()) and all(u in _UNITS for _, u in parts):
        total = sum(float(n) * _UNITS[u] for n, u in parts)
        return f"write {total:g}"
    # A number in quotes: the fix is the same text without them (`'1e-9'`: 1e-9), if YAML
    # reads that as a finite number (`nan` would be a string again, `1_000` is YAML's 1000).
    if len(text) < 50 and not isinstance(number := _plain_scalar(text.strip()), bool) and (
            isinstance(number, int | float) and math.isfinite(number)):
        return f"write {text.strip()} without quotes"
    return "for example 300"


def _plain_scalar(text: str) -> Any:
    """`text` as YAML reads it unquoted, or None if it is not one plain scalar."""
    try:
        return read_yaml(text) if text and "\n" not in text else None
    except yaml.YAMLError:
        return None


def _seconds(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float):
        hint = _as_seconds_hint(v) if isinstance(v, str) else "for example 300"
        raise PydanticCustomError("seconds", "expected seconds as a number; {hint}", {"hint": hint})
    if v != v or v < 0 or v > FLOAT_MAX:
        raise PydanticCustomError("seconds", "expected a finite number of seconds >= 0", {})
    return float(v)


FLOAT_MAX = 1.7976931348623157e308  # beyond: inf, or an int with no float (400 YAML digits)


def _number(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise PydanticCustomError("number", "expected a number", {})
    if v != v or abs(v) > FLOAT_MAX:
        raise PydanticCustomError("number", "expected a finite number", {})
    return v


def _probability(v: Any) -> Any:
    _number(v)
    if not 0 <= v <= 1:
        raise PydanticCustomError("probability", "expected a probability between 0 and 1", {})
    return float(v)


def _whole(v: Any) -> Any:
    if isinstance(v, bool) or not isinstance(v, int):
        raise PydanticCustomError("count", "expected a whole number", {})
    return v


def _count(v: Any) -> Any:
    _whole(v)
    if v < 0:
        raise PydanticCustomError("count", "expected a whole number >= 0", {})
    return v


NAME_MAX = 100  # `unstuck shrink` appends about 35 characters to a name
_NAME_RULE = (f"expected a name of letters, digits, '-', '_' and '.', not starting with '.', "
              f"at most {NAME_MAX} characters (it names output files); for example incident-601")
NAME_PATTERN = re.compile(rf"[A-Za-z0-9_-][A-Za-z0-9._-]{{0,{NAME_MAX - 1}}}")


def _name(v: Any) -> Any:
    if not isinstance(v, str) or not NAME_PATTERN.fullmatch(v):
        raise PydanticCustomError("name", _NAME_RULE, {})
    return v


# Workspace names and pool ids as the live service takes them (`PUT /workspaces/{id}`): they
# reach the history, the checker's messages, JUnit XML and Parquet, and a stray control
# character or lone surrogate (`"\ud800"` in YAML) crashed the Parquet writer mid-run.
_IDENT = re.compile(r"[A-Za-z0-9._:-]{1,200}")
_IDENT_RULE = ("expected a name of letters, digits, '.', '_', ':' and '-', at most 200 "
               "characters, as the live service takes workspace ids; for example ws-a")


def _ident(v: str) -> str:
    if not _IDENT.fullmatch(v):
        raise PydanticCustomError("ident", _IDENT_RULE, {})
    return v


_HH_MM = r"([01]?[0-9]|2[0-3]):([0-5][0-9])"  # ASCII digits, as JSON Schema reads the pattern


def _time_of_day(v: Any) -> Any:
    if isinstance(v, str) and (m := re.fullmatch(_HH_MM, v.strip())):
        return float(int(m.group(1)) * 3600 + int(m.group(2)) * 60)
    raise PydanticCustomError("time_of_day", "expected a time of day \"HH:MM\" (24 h); for example \"22:30\"", {})


@dataclass(frozen=True)
class _Shows:
    """What a validator below checks, told to editors (`unstuck scenario schema`). Pydantic
    sees only the type a `BeforeValidator` hands on, so the schema let `has_changes: 1.5`
    and `min_replicas: -1` through, which the loader refuses. Added to the schema pydantic
    makes, not in its place, so that a bound stacked on a type (`Field(le=...)`) stays."""

    keywords: tuple[tuple[str, Any], ...]

    def __get_pydantic_json_schema__(self, core: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core)
        schema.update(self.keywords)
        return schema


def _shows(**keywords: Any) -> _Shows:
    return _Shows(tuple(keywords.items()))


Seconds = Annotated[float, BeforeValidator(_seconds), _shows(minimum=0, description="seconds, >= 0")]
Ident = Annotated[str, AfterValidator(_ident),  # after the str check: `names: [1e5]` keeps its hint
                  _shows(pattern=f"^{_IDENT.pattern}$", description=_IDENT_RULE.removeprefix("expected "))]
PositiveSeconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0), _shows(description="seconds, > 0")]
Number = Annotated[float, BeforeValidator(_number)]
NonNegative = Annotated[float, BeforeValidator(_number), Field(ge=0)]
Probability = Annotated[float, BeforeValidator(_probability),
                        _shows(minimum=0, maximum=1, description="a probability, 0 to 1")]
Count = Annotated[int, BeforeValidator(_count), _shows(minimum=0, description="a whole number >= 0")]
# An editor checks the text the file holds (`unstuck scenario schema`), not the seconds the
# model makes of it: as a number, the schema refused every "HH:MM".
TimeOfDay = Annotated[float, BeforeValidator(_time_of_day), WithJsonSchema({
    "type": "string", "pattern": rf"^\s*{_HH_MM}\s*$",
    "description": 'a time of day "HH:MM" (24 h), e.g. "22:30"'})]
Name = Annotated[str, BeforeValidator(_name),
                 _shows(pattern=f"^{NAME_PATTERN.pattern}$", description=_NAME_RULE.removeprefix("expected "))]
# At least 1: the bound is Field's alone, so -1 and 0 get the same message (`_count` said ">= 0"
# to -1, and then ">= 1" to the 0 a user wrote next).
AtLeastOne = Annotated[int, BeforeValidator(_whole), Field(ge=1)]
SeedCount = Annotated[AtLeastOne, Field(le=1_000_000)]


def _key_as_written(name: str, field: Any) -> str:
    """A field's title in the schema: the key as the file writes it. An editor heads its
    hover text with the title, and pydantic's own ("Duration S") names no key."""
    return field.alias or name


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, field_title_generator=_key_as_written)
