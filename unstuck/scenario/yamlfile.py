"""The YAML of a scenario file, read strictly: unique keys, no alias bomb, YAML 1.2's floats
with an exponent, and no base-60 numbers. PyYAML's defaults (YAML 1.1) read `22:00` as 1320
and `1e-9` as text, and keep the last of two equal keys: a scenario that said one thing and
ran another."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import yaml

from unstuck.scenario.messages import cut

MAX_VALUES = 100_000  # YAML nodes of a file with every alias expanded; shipped ones have < 300


class TooLarge(yaml.YAMLError):
    pass


class Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses duplicate keys (YAML requires unique keys; PyYAML keeps
    the last) and files whose aliases expand to more than MAX_VALUES nodes ("billion laughs")."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_texts: dict[tuple[type, Any], str] = {}  # a key read as no string: `yes`

    def compose_mapping_node(self, anchor: Any) -> Any:
        # Checked as each mapping is composed, before any merge (`<<: *base`) is flattened
        # into it: flattening rewrites a merge source in place, so a check at construction
        # time took a nested source's merged keys for duplicates.
        node = super().compose_mapping_node(anchor)
        first: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a merge key may be overridden, as YAML says; complex keys: rare
            if key_node.tag != "tag:yaml.org,2002:str":
                key = self.construct_object(key_node)
                with contextlib.suppress(TypeError):  # unhashable: the constructor says so
                    self.key_texts.setdefault((type(key), key), key_node.value)
            key = (key_node.tag, key_node.value)
            if key in first:
                raise yaml.composer.ComposerError(
                    None, None, f"duplicate key {cut(repr(key_node.value), 40)} (first at line "
                    f"{first[key]}); keep only one", key_node.start_mark)
            first[key] = key_node.start_mark.line + 1
        return node

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}, set()) > MAX_VALUES:
            if _written_size(node) > MAX_VALUES:  # no alias needed: the file is that long
                raise TooLarge(f"too large: more than {MAX_VALUES:,} values (shipped scenarios "
                               "hold under 300); give arrivals as every_s instead of a long at "
                               "list, or split the file")
            raise TooLarge(f"too large once its aliases (*name) are expanded: more than "
                            f"{MAX_VALUES:,} values; write the values out instead of nesting "
                            "aliases")
        return node


# YAML 1.2's floats with an exponent. PyYAML reads YAML 1.1, whose floats need a dot and a
# signed exponent: `1e-9`, `1e+12` and `1.5e3` were strings, and the fix a message suggested
# for them ("write 1e+12, a number") failed the same way. Only what YAML 1.1 leaves a string
# is added (resolvers are tried in order, so `5`, `0x1F` and `09` read as before).
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def _no_base_60(cls: type[yaml.SafeLoader]) -> None:
    """YAML 1.2's plain scalars of the form `22:00`: text, not YAML 1.1's base-60 numbers.
    PyYAML read an unquoted time of day `22:00` as the int 1320 (and `1:30.5` as 5430.5), so
    `from: 22:00` was refused with "= 1320 (int)", while `09:00` (no base-60 number: it
    starts with 0) passed as text. A str resolver ahead of the int and float ones keeps
    such a scalar the text the user wrote; no other plain scalar matches it."""
    sexagesimal = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
    for first in "-+0123456789":
        cls.yaml_implicit_resolvers[first].insert(0, ("tag:yaml.org,2002:str", sexagesimal))


_no_base_60(Loader)


def read_yaml(text: str) -> Any:
    """The data of a scenario file's text, read as `load` reads it (unique keys, no alias
    bomb, YAML 1.2 floats, no base-60 numbers); raises `yaml.YAMLError`. `unstuck shrink`
    re-reads a file with it: `yaml.safe_load` read an unquoted `10:00` as 600."""
    return read_with_key_texts(text)[0]


def read_with_key_texts(text: str) -> tuple[Any, dict[tuple[type, Any], str]]:
    """`read_yaml`, and the text of each key YAML read as no string (for messages)."""
    loader = Loader(text)
    try:
        return loader.get_single_data(), loader.key_texts
    except RecursionError:
        # PyYAML composes nested collections recursively: a few hundred levels overflow it.
        raise TooLarge("nested too deeply for a scenario file (lists or mappings hundreds of "
                       "levels inside each other; shipped ones use under 10): flatten it") from None
    finally:
        loader.dispose()


def _written_size(node: yaml.Node) -> int:
    """Nodes under `node` as written: each alias's node counted once."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            stack += [x for pair in n.value for x in pair]
        elif isinstance(n, yaml.SequenceNode):
            stack += n.value
    return len(seen)


def _expanded_size(node: yaml.Node, memo: dict[int, float], open_: set[int]) -> float:
    """Nodes under `node` with every alias expanded (infinite for a recursive alias)."""
    if id(node) in memo:
        return memo[id(node)]
    if id(node) in open_:
        return float("inf")
    open_.add(id(node))
    children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else
                node.value if isinstance(node, yaml.SequenceNode) else [])
    size = 1.0
    for child in children:
        size += _expanded_size(child, memo, open_)
        if size > MAX_VALUES:
            break
    open_.discard(id(node))
    memo[id(node)] = size
    return size
