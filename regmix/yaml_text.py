"""YAML read as untrusted text, in one place: safe tags only, a key given twice refused, a document that
expands without end through its aliases (an alias bomb) or nests too deeply refused; every error one
line naming the field, the file and the place."""
from __future__ import annotations

import yaml

from .registry import ConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a key given twice in one mapping (PyYAML keeps the last silently,
    so a pasted block or a merge gone wrong would change a recipe without a word)."""


def _unique_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice in one mapping",
                                                    key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


MAX_YAML_NODES = 100_000   # values of a YAML document with its aliases expanded (a recipe has a few hundred)


def _expanded_size(node, memo: dict, open_nodes: set) -> int:
    """How many values the node stands for once every alias (*name) is expanded; an alias bomb (aliases
    of aliases) is large here while its text is small. A node that contains itself is refused."""
    key = id(node)
    if key in open_nodes:
        raise yaml.YAMLError("an alias refers to a value that contains it")
    if key not in memo:
        open_nodes.add(key)
        children = node.value if isinstance(node, yaml.SequenceNode) else \
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
        memo[key] = 1 + sum(_expanded_size(child, memo, open_nodes) for child in children)
        open_nodes.discard(key)
    return memo[key]


def load_yaml_text(text: str, *, field: str, path) -> object:
    """YAML text as data, duplicate keys refused; errors are one line naming `field`, the file and the place.
    A document that expands to more than MAX_YAML_NODES values (an alias bomb) or nests too deeply is refused."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, set()) > MAX_YAML_NODES:
            raise ConfigError(f"{field}: {path} expands to more than {MAX_YAML_NODES} values through its aliases "
                              f"(*name); refused")
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{field}: {path} is not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    except RecursionError:
        raise ConfigError(f"{field}: {path} is nested too deeply to be a config") from None
    finally:
        loader.dispose()
