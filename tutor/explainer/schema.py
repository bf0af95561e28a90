"""Format v1's front matter as pydantic validates it, and its errors in an author's words.

These models are the input side only (unknown keys kept, ``null`` read as empty); the
loader turns them into the records of ``model.py``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tutor.explainer.spec import FORMAT_VERSION


def _none_to_list(v: Any) -> Any:
    return [] if v is None else v


def _none_to_str(v: Any) -> Any:
    return "" if v is None else v


class CheckIn(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    question: str
    answer: str = ""
    misconceptions: list[str] = Field(default_factory=list)

    _lists = field_validator("misconceptions", mode="before")(_none_to_list)
    _strs = field_validator("answer", mode="before")(_none_to_str)


class ConceptIn(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    id: str
    title: str
    summary: str = ""
    prerequisites: list[str] = Field(default_factory=list)
    checks: list[CheckIn] = Field(default_factory=list)

    _lists = field_validator("prerequisites", "checks", mode="before")(_none_to_list)
    _strs = field_validator("summary", mode="before")(_none_to_str)


class FrontMatterIn(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    tutor: int = FORMAT_VERSION
    title: str
    summary: str = ""
    audience: str = ""
    author: str = ""
    feedback: str = ""  # where readers send notes: an email address or an http(s) URL
    concepts: list[ConceptIn]

    _strs = field_validator("summary", "audience", "author", "feedback", mode="before")(_none_to_str)


def _loc_name(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_TYPE_WORDS = {
    "string_type": "text",
    "list_type": "a list",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "model_type": "a mapping of keys (key: value)",
    "dict_type": "a mapping of keys (key: value)",
}


def describe(err: dict) -> str:
    """One pydantic error as a sentence naming the key: "'concepts[0].title' should be text"."""
    loc = tuple(err["loc"])
    where = _loc_name(loc)
    typ = err["type"]
    if typ == "missing":
        parent = _loc_name(loc[:-1]) or "front matter"
        return f"{parent} is missing the required key '{loc[-1]}'"
    if typ in _TYPE_WORDS:
        got = type(err.get("input")).__name__
        got = {"NoneType": "nothing", "str": "text", "dict": "a mapping", "list": "a list"}.get(got, got)
        return f"'{where}' should be {_TYPE_WORDS[typ]}, not {got}"
    return f"'{where}': {err['msg']}"
