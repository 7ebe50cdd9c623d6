"""What an editor shows for a scenario file: the real YAML language server (the one VS Code's
YAML extension and Neovim's yamlls run) reads each file's `# yaml-language-server: $schema=`
line and the checked-in schema, as it does while a user types."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from unstuck.scenario import FAULT_TYPES, ScenarioInvalid, load, parse, read_yaml, schema

from . import yamlls
from .test_scenario_cli import SHIPPED


@pytest.fixture(scope="module")
def server():
    program = yamlls.find()
    if program is None:
        pytest.skip(yamlls.SKIP_REASON)
    ls = yamlls.LanguageServer(program, Path.cwd())
    yield ls
    ls.close()


def test_every_shipped_scenario_shows_no_problem(server):
    # Each file's own modeline: `../scenario.schema.json` from scenarios/adversarial/.
    shown = {str(path): server.diagnostics(path) for path in SHIPPED}
    assert shown == {str(path): [] for path in SHIPPED}


# Each mistake on a line of its own, and each one the loader refuses too.
PLANTED = """\
# yaml-language-server: $schema=scenario.schema.json
duration_s: 600
seeds: 0
colour: blue
clock_origin: "25:00"
pools:
  - {id: pool-1, min_replicas: -1}
agents:
  has_changes: 1.5
  plan_s: {kind: unifrom, min: 30, max: 90}
  apply_s: {kind: uniform, min: 30}
  connect_s: {kind: fixed, value: 5, min: 3}
workload:
  - {count: 1, at: [5], prefix: ws a}
faults:
  - {type: pod-kil, at: 30}
"""
MISTAKES = [3, 4, 5, 7, 9, 10, 11, 12, 14, 16]  # the lines, counted from 1


def beside_the_schema(folder: Path) -> Path:
    """`folder`, with the checked-in schema where a file's `$schema=scenario.schema.json` finds it."""
    shutil.copy("scenarios/scenario.schema.json", folder)
    return folder


def planted(tmp_path: Path) -> Path:
    path = beside_the_schema(tmp_path) / "planted.yaml"
    path.write_text(PLANTED)
    return path


def test_each_mistake_the_loader_refuses_is_shown_on_its_line(server, tmp_path):
    path = planted(tmp_path)
    with pytest.raises(ScenarioInvalid) as refused:
        load(path)
    assert len(refused.value.problems) == len(MISTAKES), refused.value.problems
    shown = server.diagnostics(path)
    assert sorted({line for line, _ in shown}) == MISTAKES, shown
    messages = dict(shown)
    assert "minimum of 1" in messages[3]
    assert "colour" in messages[4]
    assert "minimum of 0" in messages[7] and "maximum of 1" in messages[9]
    assert 'Missing property "max"' in messages[11]  # each kind's own parameters
    assert "min is not allowed" in messages[12]
    assert "pod-kill" in messages[16]


# Mistakes only in company (count with names, an hpa on a bare pool): the loader's own words
# on each line (`mapping_rules`), where `unstuck scenario check` finds them over two rounds.
ACROSS = """\
# yaml-language-server: $schema=scenario.schema.json
duration_s: 600
pools:
  - {id: pool-1, hpa: {target: 0.5}}
  - {id: pool-2, manager: deployment, hpa: {target: 0.5}}
  - {id: pool-3, initial_replicas: 2}
workload:
  - {count: 2, names: [a, b], at: [5]}
  - {count: 1}
  - {names: [c], prefix: ws, at: [5]}
faults:
  - {type: pod-kill}
  - {type: node-loss, at: 5, rate_per_h: 2}
  - {type: hpa-scale-down, pool: pool-2, at: 5}
  - {type: hpa-scale-down, pool: pool-2, at: 5, mode: patch}
  - {type: hpa-scale-down, pool: pool-2, at: 5, load: 0.1, max_replicas: 2}
"""
SAYS = {  # line: (what the editor puts before the loader's words, the words)
    4: ("", schema.HPA_NEEDS_DEPLOYMENT),
    6: ("initial_replicas ", schema.INITIAL_NEEDS_DEPLOYMENT),
    8: ("", schema.COUNT_OR_NAMES),
    9: ("", schema.NO_ARRIVAL),
    10: ("prefix ", schema.PREFIX_WITH_NAMES),
    12: ("", schema.AT_OR_RATE),
    13: ("", schema.AT_OR_RATE),
    14: ("load ", schema.METRIC_NEEDS_LOAD),
    15: ("", schema.PATCH_NEEDS_BOUNDS),
    16: ("max_replicas ", schema.BOUND_IS_FOR_PATCH),
}


def test_mistakes_across_fields_are_shown_in_the_loaders_words(server, tmp_path):
    path = beside_the_schema(tmp_path) / "across.yaml"
    path.write_text(ACROSS)
    assert dict(server.diagnostics(path)) == {line: key + words for line, (key, words) in SAYS.items()}
    # The loader refuses each line alone, in the same words.
    lines = ACROSS.splitlines()
    valid = {"duration_s": 600, "pools": [read_yaml(lines[4].lstrip(" -"))],
             "workload": [{"count": 1, "at": [5]}]}
    for line, (_, words) in SAYS.items():
        section = next(s.rstrip(":") for s in reversed(lines[:line]) if not s.startswith(" "))
        entry = read_yaml(lines[line - 1].lstrip(" -"))
        data = {**valid, section: [*valid.get(section, [])[:1], entry] if section == "pools" else [entry]}
        with pytest.raises(ScenarioInvalid) as refused:
            parse(data, "across.yaml")
        assert any(words in problem for problem in refused.value.problems), (line, refused.value.problems)


def test_without_the_schema_line_nothing_is_checked(server, tmp_path):
    # The line is what ties a file to the schema: the server knows no other (schemaStore off).
    path = planted(tmp_path)
    text = path.read_text().split("\n", 1)[1]
    assert server.diagnostics(tmp_path / "plain.yaml", text) == []


def test_the_server_completes_fault_types_and_fields(server, tmp_path):
    beside_the_schema(tmp_path)
    head = "# yaml-language-server: $schema=scenario.schema.json\nduration_s: 600\n"
    types = server.completions(tmp_path / "a.yaml", head + "faults:\n  - type: ")
    assert set(FAULT_TYPES) <= set(types), types
    fields = server.completions(tmp_path / "b.yaml", head + "agents:\n  ")
    assert {"connect_s", "plan_s", "apply_s", "has_changes"} <= set(fields), fields
    # A distribution's parameters, once its kind is written: that kind's alone.
    params = server.completions(tmp_path / "c.yaml", head + "agents:\n  plan_s:\n    kind: uniform\n    ")
    assert {"min", "max", "floor"} <= set(params) and not {"mean", "median", "value"} & set(params), params


@pytest.mark.parametrize(("typed", "model"), [
    ("faults:\n  - type: hpa-scale-down\n    mode: patch\n    ", schema.HpaScaleDown),
    ("faults:\n  - type: pod-kill\n    ", schema.PodKill),
    ("workload:\n  - count: 3\n    ", schema.Workspaces),
    ("pools:\n  - id: p\n    ", schema.PoolModel),
], ids=["hpa-scale-down", "pod-kill", "workspaces", "pool"])
def test_the_rules_across_fields_offer_nothing_but_the_fields(server, tmp_path, typed, model):
    # The rules' own views of a field (`mapping_rules`) must not be completed as fields: the
    # server offered `at: ${1|at,null|}`, which inserts `at: at`, and a snippet per rule.
    beside_the_schema(tmp_path)
    head = "# yaml-language-server: $schema=scenario.schema.json\nduration_s: 600\n"
    offered = server.insertions(tmp_path / "a.yaml", head + typed)
    written = {line.split(":")[0].strip(" -") for line in typed.splitlines()}
    fields = {f.alias or name for name, f in model.model_fields.items()} - written
    assert sorted(label for label, _ in offered) == sorted(fields), offered
    assert not [text for label, text in offered if f"|{label}," in text], offered


@pytest.mark.parametrize(("key", "says"), [
    ("has_changes", "a probability, 0 to 1"),
    ("duration_s", "seconds, >= 0"),
    ("min_replicas", "a whole number >= 0"),
])
def test_hovering_a_key_names_it_and_its_kind_of_value(server, key, says):
    shown = server.hover(Path("scenarios/incident-601.yaml"), key).replace("\\_", "_")  # markdown
    assert shown.startswith(f"#### {key}\n"), shown  # the key, not pydantic's "Has Changes"
    assert says in shown, shown


def test_a_field_under_a_rule_is_hovered_by_its_own_title_alone(server, tmp_path):
    # Found by review: under `hpa`, a rule's view of initial_replicas (>= 1) made the server
    # head its hover `initial_replicas || initial_replicas` (it counts matches of an anyOf).
    beside_the_schema(tmp_path)
    path = tmp_path / "a.yaml"
    path.write_text("# yaml-language-server: $schema=scenario.schema.json\nduration_s: 600\n"
                    "pools:\n  - id: p\n    manager: deployment\n    initial_replicas: 2\n"
                    "    hpa: {target: 0.5}\nworkload:\n  - count: 3\n    every_s: 60\n")
    for key, says in (("initial_replicas", "a whole number >= 0"), ("count", "a whole number >= 0"),
                      ("every_s", "seconds, >= 0")):
        shown = server.hover(path, key).replace("\\_", "_")
        assert shown.startswith(f"#### {key}\n\n{says}"), shown
    # An optional section (a model or null) is headed with its key too, not its model's name.
    assert server.hover(path, "hpa").startswith("#### hpa\n"), server.hover(path, "hpa")
