"""Loading a scenario file: read it, validate every section, then the rules across them, and
report *every* problem at once (but a rule that reads a section with a field error of its
own, which waits for it), each as one line (`messages.line`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from unstuck.scenario.messages import ScenarioInvalid, cut, line
from unstuck.scenario.rules import cross_field_problems
from unstuck.scenario.schema import Scenario
from unstuck.scenario.wording import as_written, field_path, odd_key_rule, rule_text, user_loc
from unstuck.scenario.yamlfile import TooLarge, read_with_key_texts


def parse(data: Any, file: str, key_texts: dict[tuple[type, Any], str] | None = None
          ) -> Scenario:
    """Validate already-loaded YAML data; `file` names it in the messages, `key_texts` the
    text of each key YAML read as something other than a string (`yes`: True)."""
    if data is None:
        raise ScenarioInvalid([f"{file}: the file is empty; a scenario needs at least "
                               "duration_s and workload, for example: duration_s: 600 and "
                               "workload: [{count: 1, at: [0]}]"])
    if not isinstance(data, dict):
        raise ScenarioInvalid([f"{file}: the file must hold a mapping (name:, duration_s:, "
                               f"workload:, ...), not {type(data).__name__}"])
    # Top-level `x-` keys are the file's own, a place for anchors (`x-base: &base {...}`) that
    # fields then merge (`<<: *base`), as docker-compose allows; nothing reads them.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    sets: list[tuple[tuple[Any, ...], Any]] = []
    data = _without_sets(data, (), sets)
    problems = [line(file, field_path(loc), value, "expected a list such as [a, b]; a YAML set "
                      "(!!set) has no order, so runs of it would differ between processes")
                for loc, value in sets]
    named = "name" in data
    data.setdefault("name", Path(file).stem)
    bad: frozenset[Any] = frozenset()
    try:
        s: Scenario | None = Scenario.model_validate(data)
    except ValidationError as e:
        bad = frozenset(err["loc"][0] if err["loc"] else None for err in e.errors())
        s = _valid_part(data, bad)
        for err in e.errors():
            loc, value = tuple(err["loc"]), err.get("input")
            if err["type"] == "union_tag_invalid":
                loc, value = loc + ("type",), (err.get("ctx") or {}).get("tag")
            elif err["type"] == "union_tag_not_found":
                loc = loc + ("type",)
            rule = rule_text(err)
            if err["type"] == "invalid_key":
                # A key that YAML did not read as text (`5:`, `yes:`, `null:`): name the
                # mapping that holds it, not a path made of the key.
                loc = loc[:-1]
                rule = odd_key_rule(value, (key_texts or {}).get((type(value), value)))
            elif loc[-1:] == ("[key]",):  # a mapping key that is not one of the allowed ones
                loc = loc[:-2]
                rule = "unknown key; " + rule
            if loc == ("name",) and not named:
                rule += "; the name comes from the file name: add a name: line or rename the file"
            loc = user_loc(data, loc)
            problems.append(line(file, field_path(loc), value, rule,
                                  show_value=err["type"] not in ("missing", "union_tag_not_found",
                                                                 "invalid_key")))
    if s is not None:
        problems += [line(file, path, as_written(data, path, value), rule)
                     for path, value, rule in cross_field_problems(s, bad)]
    if problems or s is None:
        raise ScenarioInvalid(problems) from None
    return s


# The required sections, stubbed when they failed; no cross-field rule reads a failed one.
# Every required field needs one (test_scenario checks): a bad `name` alone (the file's own
# name, say `my scenario.yaml`) hid every cross-field problem.
_STUBS = {"name": "stub", "duration_s": 0, "workload": []}


def _valid_part(data: dict[Any, Any], bad: frozenset[Any]) -> Scenario | None:
    """The scenario with each top-level section that failed validation (`bad`) left out, or
    stubbed where it is required, so that the cross-field rules of the sections that did
    validate run in the same round (`rules.cross_field_problems` skips those that read a section in `bad`).
    Errors are per section (the top-level model has no rule across sections), so the rest
    validates; None if it does not, or an error named no section."""
    if None in bad:
        return None
    rest = {k: v for k, v in data.items() if k not in bad}
    rest.update({k: v for k, v in _STUBS.items() if k in bad})
    try:
        return Scenario.model_validate(rest)
    except ValidationError:
        return None


def _without_sets(v: Any, loc: tuple[Any, ...], found: list[tuple[tuple[Any, ...], Any]]) -> Any:
    """`v` with each set (YAML `!!set`) noted in `found` and replaced by a list, so the rest
    is still validated. Pydantic would take a set for a list, in an order that depends on
    the process's string hash seed: `names: !!set {a, b}` ran differently in every process."""
    if isinstance(v, set | frozenset):
        found.append((loc, v))
        return sorted(v, key=repr)
    if isinstance(v, dict):
        return {k: _without_sets(x, loc + (k,), found) for k, x in v.items()}
    if isinstance(v, list):
        return [_without_sets(x, loc + (i,), found) for i, x in enumerate(v)]
    return v


def load(path: str | Path) -> Scenario:
    return load_with_text(path)[0]


def load_with_text(path: str | Path) -> tuple[Scenario, str]:
    """`load`, and the text it read: a caller that needs the text too (`unstuck shrink`
    writes its --out file from it) must not read the file again, which may be a pipe
    (`<(cat x.yaml)`, /dev/stdin) that is empty the second time."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioInvalid([f"{file}: no such file; give the path of a scenario, "
                               "e.g. scenarios/incident-601.yaml"]) from None
    except IsADirectoryError:
        raise ScenarioInvalid([f"{file}: is a directory, not a scenario file; give the files in "
                               f"it, e.g. {Path(file) / '*.yaml'}"]) from None
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        raise ScenarioInvalid([f"{file}: line {line}: byte {e.object[e.start]:#04x} is not UTF-8 "
                               "text; save the file as UTF-8"]) from None
    except OSError as e:
        why = e.strerror or e.__class__.__name__
        raise ScenarioInvalid([f"{file}: cannot read it ({why})"]) from None
    try:
        data, key_texts = read_with_key_texts(text)
    except TooLarge as e:
        raise ScenarioInvalid([f"{file}: {e}"]) from None
    except yaml.reader.ReaderError as e:  # a character YAML forbids: its offset, not a mark
        line = text[:e.position].count("\n") + 1
        raise ScenarioInvalid([f"{file}: line {line}: the character U+{e.character:04X} is not "
                               "allowed in YAML; remove it (a control character, often pasted "
                               "in by accident)"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        tab = "; indent with spaces: YAML does not allow tabs there" if "\\t" in problem else ""
        raise ScenarioInvalid([f"{file}: not valid YAML{where}: {cut(problem, 200)}{tab}"]
                              ) from None
    return parse(data, file, key_texts), text
