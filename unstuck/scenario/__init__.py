"""Scenario files: the validated model of `scenarios/*.yaml`, and its translation to the world.

A scenario sets the cluster, the pools, the agents, the users and their workload, the faults,
the invariant bounds and the gate thresholds (docs/scenarios.md documents every field). The
whole file is validated before anything runs and *every* problem is reported (but a rule
across fields that reads a section with a field error of its own, which waits for it), each as
one line naming the file, the field path, the value and its type, the rule and the fix, e.g.

    scenarios/x.yaml: faults[2].at = '5m' (str): expected seconds as a number; write 300

`load(path)` returns a `Scenario` or raises `ScenarioInvalid` (its `problems` are those lines);
`Scenario.world()` builds the `sim.config.WorldConfig` the simulation runs; `advice` warns of
settings no scheduler can pass.

One module per concept: `yamlfile` reads the text, `fields` and `schema` validate each field
and section, `rules` the rules across them, `wording` words pydantic's errors, `messages`
makes every finding one line, `loading` puts them together, `advice` warns, and
`editor_schema` gives editors the file's JSON Schema (`mapping_rules`: the rules across one
mapping's fields, in it).
"""

from unstuck.scenario.advice import advice
from unstuck.scenario.fields import NAME_MAX
from unstuck.scenario.loading import load, load_with_text, parse
from unstuck.scenario.messages import ScenarioInvalid
from unstuck.scenario.schema import FAULT_TYPES, Scenario, Sometimes
from unstuck.scenario.yamlfile import read_yaml

__all__ = ["FAULT_TYPES", "NAME_MAX", "Scenario", "ScenarioInvalid", "Sometimes", "advice", "load",
           "load_with_text", "parse", "read_yaml"]
