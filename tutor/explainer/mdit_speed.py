"""Speed patches for the loader's markdown-it block parser (never the renderer's).

The loader only needs block structure (where the headings are), but it parses whole files,
up to ``MAX_FILE_BYTES``; stock markdown-it spends most of that time on calls that
cannot match. Three patches, none of which changes a token:

- ``dispatch_block_rules``: markdown-it tries every block rule on every line (and every
  terminator rule on every paragraph line), and most return False after looking at one
  character. Each rule chain is replaced by one dispatcher that calls only the rules able
  to match the line's first character, in the original order.
  ``tests/test_explainer_hostile.py`` compares the tokens with a stock parser's on the
  CommonMark corpus and on random documents.
- ``silence_block_loggers``: every block rule calls ``LOGGER.debug()`` on entry, several
  calls per line. Unless markdown-it debug output was really asked for, those become no-ops.
- ``gc_paused``: the parse allocates many tokens per line and keeps them all alive, so
  the cyclic GC would rescan them again and again for nothing.

Both rule patches depend on markdown-it internals (``Ruler.__rules__``/``__cache__``,
module ``LOGGER``s); with another layout they leave the stock, slower parser as it is.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Block rules that can only match when the line's first non-space character is one of
#: these (each rule checks it before doing anything else, and all of them refuse
#: lines indented 4+ columns, which are code).
_RULE_FIRST_CHARS = {
    "fence": "`~",
    "blockquote": ">",
    "hr": "*-_",
    "list": "*-+0123456789",
    "reference": "[",
    "html_block": "<",
    "heading": "#",
}


def dispatch_block_rules(md: Any) -> None:
    """Replace each block rule chain of ``md`` by one first-character dispatcher."""
    ruler = md.block.ruler
    ruler.getRules("")  # compile the chains
    rules, cache = getattr(ruler, "__rules__", None), getattr(ruler, "__cache__", None)
    if not isinstance(rules, list) or not isinstance(cache, dict):
        return  # another markdown-it layout: keep the stock (slower, identical) chains
    names = {id(rule.fn): rule.name for rule in rules}
    for chain, fns in list(cache.items()):
        named = [(names.get(id(fn), ""), fn) for fn in fns]
        cache[chain] = [_make_dispatcher(named)] if named else []


def _make_dispatcher(named: list[tuple[str, Any]]) -> Any:
    every = [fn for _, fn in named]
    indented = [fn for name, fn in named if name not in _RULE_FIRST_CHARS]
    general = [fn for name, fn in named if name not in _RULE_FIRST_CHARS and name != "code"]
    by_char: dict[str, list[Any]] = {}
    for chars in _RULE_FIRST_CHARS.values():
        for ch in chars:
            by_char[ch] = [
                fn
                for name, fn in named
                if (ch in _RULE_FIRST_CHARS.get(name, "")) or (name not in _RULE_FIRST_CHARS and name != "code")
            ]

    def dispatch(state: Any, start: int, end: int, silent: bool) -> bool:
        pos = state.bMarks[start] + state.tShift[start]
        if pos >= state.eMarks[start]:
            fns = every  # blank line: let every rule decide, as markdown-it would
        elif state.sCount[start] - state.blkIndent >= 4:
            fns = indented
        else:
            fns = by_char.get(state.src[pos], general)
        for fn in fns:
            if fn(state, start, end, silent):
                return True
        return False

    return dispatch


def silence_block_loggers() -> None:
    """Make the block rules' ``LOGGER.debug`` a no-op for this process, unless DEBUG
    logging is enabled for them."""
    for mod_name, module in list(sys.modules.items()):
        if not mod_name.startswith("markdown_it.rules_block."):
            continue
        logger = getattr(module, "LOGGER", None)
        if isinstance(logger, logging.Logger) and not logger.isEnabledFor(logging.DEBUG):
            logger.debug = _no_log  # type: ignore[method-assign]


def _no_log(*_args: Any, **_kwargs: Any) -> None:
    return None


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC off for the duration (restored only if it was on)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
