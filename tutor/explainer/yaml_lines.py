"""YAML front matter read with its line marks, so every error can name a line of the file.

The YAML is composed into a node tree (which keeps each key's and value's position) before
it is turned into data; a validation error's location (``concepts[2].title``) is then
walked down that tree to the node, and the node's line is the line shown. Lines here are
0-based YAML lines; callers add the offset of the front matter in the file.
"""

from __future__ import annotations

import re
from typing import Any

from tutor.explainer.spec import MAX_YAML_DEPTH
from tutor.text import plural


class Refused(Exception):
    """Front matter that cannot be read: the message to show and its 0-based YAML line.
    A ``{line:N}`` in the message is a YAML line the caller turns into a file line."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message = message
        self.line = line


def _loader_class():
    """A SafeLoader that refuses anchors/aliases (no alias bombs) and deep nesting."""
    import yaml

    class Loader(yaml.SafeLoader):
        _depth = 0

        def compose_node(self, parent, index):
            event = self.peek_event()
            line = event.start_mark.line if event.start_mark else None
            if isinstance(event, yaml.AliasEvent):
                raise Refused(
                    f"YAML alias *{event.anchor} is not allowed in explainer front matter; write the value out",
                    line,
                )
            if getattr(event, "anchor", None):
                raise Refused(
                    f"YAML anchor &{event.anchor} is not allowed in explainer front matter; write the value out",
                    line,
                )
            self._depth += 1
            if self._depth > MAX_YAML_DEPTH:
                raise Refused(f"front matter is nested more than {MAX_YAML_DEPTH} levels deep", line)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return Loader


def parse_yaml(text: str) -> tuple[Any, Any]:
    """Return (data, root node). Raises Refused with a 0-based YAML line."""
    import yaml

    try:
        # The reader checks characters up front (control characters are not YAML).
        loader = _loader_class()(text)
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) if isinstance(e.position, int) else None
        raise Refused(
            f"front matter contains the control character U+{e.character:04X}, which YAML does not allow",
            line,
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _refuse_duplicate_keys(node)
        data = loader.construct_document(node)
        return data, node
    except Refused:
        raise
    except yaml.constructor.ConstructorError as e:
        raise _constructor_refusal(e) from None
    except yaml.MarkedYAMLError as e:
        raise _syntax_refusal(e) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) if isinstance(e.position, int) else None
        raise Refused(f"front matter contains a character YAML does not allow (U+{e.character:04X})", line) from None
    except yaml.YAMLError as e:
        raise Refused(f"invalid YAML in front matter: {e}", None) from None
    except RecursionError:
        raise Refused("front matter is nested too deeply", None) from None
    finally:
        loader.dispose()


def _constructor_refusal(e: Any) -> Refused:
    """A value YAML cannot build: a tag (``!!python/object``) is named as such."""
    mark = e.problem_mark or e.context_mark
    line = mark.line if mark else None
    problem = e.problem or "cannot be read"
    m = re.search(r"tag '([^']*)'", problem)
    if m:
        tag = m.group(1).replace("tag:yaml.org,2002:", "!!")
        return Refused(
            f"YAML tag {tag} is not allowed; front matter holds plain data (text, numbers, lists, mappings)",
            line,
        )
    return Refused(f"invalid YAML in front matter: {problem}", line)


def _syntax_refusal(e: Any) -> Refused:
    """Point at where the broken construct starts (an unclosed quote, a bad indentation)
    and say where YAML noticed it."""
    ctx, prob = e.context_mark, e.problem_mark
    line = (ctx or prob).line if (ctx or prob) else None
    what = e.problem or "syntax error"
    if e.context:
        what = f"{e.context}: {what}"
    if ctx and prob and prob.line != ctx.line:
        what += f" (noticed {plural(prob.line - ctx.line, 'line')} further down)"
    return Refused(f"invalid YAML in front matter: {what}", line)


def _refuse_duplicate_keys(root: Any) -> None:
    """PyYAML keeps the last of two equal keys silently; an author means one of them."""
    import yaml

    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        raise Refused(
                            f"key '{k.value}' appears twice in the same mapping (first on line "
                            f"{{line:{seen[k.value]}}}); keep one",
                            k.start_mark.line,
                        )
                    seen[k.value] = k.start_mark.line
                stack.append(v)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _node_at(root: Any, loc: tuple) -> Any:
    """The deepest YAML node along a pydantic error location."""
    import yaml

    node = root
    for part in loc:
        nxt = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == part:
                    nxt = v
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                nxt = node.value[part]
        if nxt is None:
            break
        node = nxt
    return node


def key_line(root: Any, loc: tuple, offset: int) -> int | None:
    """The file line for an error at ``loc``: the key's own line when it exists (a block
    value starts on the next line), else the item, else the nearest existing parent."""
    import yaml

    if root is None:
        return None
    if loc and isinstance(loc[-1], str):
        parent = _node_at(root, loc[:-1])
        if isinstance(parent, yaml.MappingNode) and _node_at(root, loc) is not parent:
            for k, _v in parent.value:
                if isinstance(k, yaml.ScalarNode) and k.value == loc[-1]:
                    return k.start_mark.line + offset
    node = _node_at(root, loc)
    return node.start_mark.line + offset


def top_key_line(root: Any, key: str, offset: int) -> int | None:
    """The file line of a top-level key itself (not its value), or None."""
    import yaml

    if isinstance(root, yaml.MappingNode):
        for k, _v in root.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k.start_mark.line + offset
    return None
