"""The reader's own price table (``prices.yaml``), for models the built-in table cannot price.

A local server costs 0 and a proxy's alias is priced as the dearest Sonnet; a reader who pays
for a hosted model behind LiteLLM, or who wants a GPU hour counted, writes their prices here.
Format and location: docs/models.md ("Your own prices").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from tutor.engine.models import ModelProfile
from tutor.errors import TutorError

PRICES_ENV = "TUTOR_PRICES"
PRICES_NAME = "prices.yaml"
# USD per million tokens. cache_write is the 5-minute write; the others default from it.
_FIELDS = ("input", "output", "cache_write", "cache_write_1h", "cache_read")


@dataclass(frozen=True)
class Prices:
    input: float
    output: float
    cache_write: float
    cache_write_1h: float
    cache_read: float
    source: str  # "prices.yaml line 3", for the header's tooltip and `tutor where`


def prices_path(db_dir: Path) -> Path:
    """$TUTOR_PRICES, else prices.yaml beside the session database."""
    env = os.environ.get(PRICES_ENV, "").strip()
    return Path(env).expanduser() if env else db_dir / PRICES_NAME


def load_prices(path: Path) -> dict[str, Prices]:
    """Model id (or id prefix) to prices; {} when the file does not exist. A bad file is a
    TutorError naming the file, the line and what to write instead."""
    import yaml

    from tutor.files import safe_read_bytes

    if not path.is_file():
        if path.exists() or os.environ.get(PRICES_ENV, "").strip():
            raise TutorError(f"{path}: no such price file", hint=f"Create it, or unset {PRICES_ENV}.")
        return {}
    raw = safe_read_bytes(path, 1 << 20, what="price file (YAML)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TutorError(f"{path}: not UTF-8 text (byte {exc.start})", hint="Save it as UTF-8.") from None
    example = "for example:  my-model: {input: 3, output: 15}"
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise TutorError(f"{path}, {where}: not valid YAML ({getattr(exc, 'problem', None) or 'unreadable'})", hint=example) from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise TutorError(f"{path}, line {root.start_mark.line + 1}: expected model ids, each with its prices", hint=example)
    table: dict[str, Prices] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        model = str(key_node.value).strip()
        if not isinstance(value_node, yaml.MappingNode) or not model:
            raise TutorError(f"{path}, line {line}: {model or 'a model'} needs its prices as input/output pairs", hint=example)
        got: dict[str, float] = {}
        for f_node, v_node in value_node.value:
            name = str(f_node.value)
            fline = f_node.start_mark.line + 1
            if name not in _FIELDS:
                raise TutorError(f"{path}, line {fline}: unknown price {name!r} for {model}",
                                 hint=f"Use {', '.join(_FIELDS)} (USD per million tokens).")
            try:
                value = float(v_node.value)
            except (TypeError, ValueError):
                value = -1.0
            if not (value >= 0 and value != float("inf")):
                raise TutorError(f"{path}, line {fline}: {model} {name} must be a number of dollars ≥ 0, not {v_node.value!r}",
                                 hint="Prices are USD per million tokens, for example 3 or 0.25.")
            got[name] = value
        if "input" not in got or "output" not in got:
            raise TutorError(f"{path}, line {line}: {model} needs at least input and output", hint=example)
        cw = got.get("cache_write", got["input"] * 1.25)
        table[model] = Prices(
            got["input"], got["output"], cw, got.get("cache_write_1h", got["input"] * 2.0),
            got.get("cache_read", got["input"] * 0.1), f"{path.name} line {line}",
        )
    return table


def match(table: dict[str, Prices], model: str) -> Prices | None:
    """The exact id, else the longest prefix in the table."""
    if model in table:
        return table[model]
    best = max((k for k in table if model.startswith(k)), key=len, default=None)
    return table[best] if best is not None else None


def priced(profile: ModelProfile, prices: Prices) -> ModelProfile:
    return replace(
        profile,
        price_input=prices.input,
        price_output=prices.output,
        price_cache_write_5m=prices.cache_write,
        price_cache_write_1h=prices.cache_write_1h,
        price_cache_read=prices.cache_read,
    )
