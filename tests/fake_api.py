"""A fake Anthropic Messages API: a real HTTP server on 127.0.0.1 for tests and benchmarks.

Why: the rules say real parts talk through real boundaries. The real ``anthropic`` SDK
(and anything else that speaks HTTP, such as ``llm``) is pointed at this server with
``base_url=server.url``; nothing of ours is mocked. Documented in docs/fake-api.md.

Usage::

    from fake_api import FakeAPI, text, http_error

    with FakeAPI() as api:                       # random port, background thread
        api.enqueue(text("Hello there.", chunk_size=4))
        api.enqueue(http_error(429), http_error(429), text("ok"))
        api.handler = lambda req: text("generated")  # used when the queue is empty
        ... AsyncAnthropic(base_url=api.url, api_key="test-key") ...
        api.requests[-1].body                    # every request body is recorded

Each request pops one scripted reply from the queue (FIFO); when the queue is empty the
``handler`` callable (request body dict -> Reply or str) is asked, else a default text.
Cache accounting follows the prefix rules in docs/fake-api.md (``PromptCache``), with the
5-minute and 1-hour TTLs on a clock that ``api.advance(seconds)`` moves forward.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

try:  # the fixture is a convenience for tests; benchmarks import this module without pytest
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

MIN_CACHEABLE_TOKENS = 1024  # the pre-thinking fake; thinking mode uses today's 512 (PromptCache.min_tokens)
THINKING_MIN_CACHEABLE_TOKENS = 512

# Today's default model thinks adaptively before it answers (docs/models.md). In thinking mode
# the fake spends this many output tokens on a thinking block per effort, against max_tokens,
# before any visible text; a request without output_config.effort is treated as "high", the
# API's default. THINKING_TEXT is what a leak of thinking into the reply would look like.
THINKING_TOKENS = {"low": 300, "medium": 1200, "high": 3000, "xhigh": 6000, "max": 10000}
THINKING_TEXT = "THINKING-NOT-FOR-THE-READER "
LOOKBACK_BLOCKS = 20

ReplyKind = Literal[
    "text", "http_error", "stream_error", "drop", "no_stop", "hang",
    "ping", "stall_body", "raw_stream", "raw_http",  # the fault modes (docs/fake-api.md, "Misbehaving servers")
]


@dataclass
class Reply:
    """One scripted answer to one request. Build it with the helpers below."""

    kind: ReplyKind = "text"
    chunks: list[str] = field(default_factory=list)  # text deltas, in order
    delay: float | list[float] = 0.0  # seconds to sleep before each chunk (or one value per chunk)
    stop_reason: str | None = "end_turn"
    status: int = 200  # http_error only
    error_type: str = "api_error"
    error_message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 30.0  # hang only
    output_tokens: int | None = None  # default: len(text) // 4 + 1
    input_usage: dict[str, int] | None = None  # report this instead of the counted prompt (snapshots)
    raw: list[bytes] = field(default_factory=list)  # raw_stream: SSE bytes after the headers; raw_http: the body
    content_type: str | None = None  # raw_http only (None: no content-type header)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def delay_before(self, i: int) -> float:
        if isinstance(self.delay, list):
            return self.delay[i] if i < len(self.delay) else 0.0
        return self.delay


def _chunk(s: str, chunk_size: int | None, chunks: list[str] | None) -> list[str]:
    if chunks is not None:
        if "".join(chunks) != s and s:
            raise ValueError("chunks must join to the text")
        return list(chunks)
    if not chunk_size or chunk_size <= 0:
        return [s] if s else []
    return [s[i : i + chunk_size] for i in range(0, len(s), chunk_size)]


def text(
    s: str = "",
    *,
    chunk_size: int | None = 16,
    chunks: list[str] | None = None,
    delay: float | list[float] = 0.0,
    stop_reason: str = "end_turn",
    output_tokens: int | None = None,
    input_usage: dict[str, int] | None = None,
) -> Reply:
    """A normal streamed reply, split into text_delta events.

    ``input_usage`` fixes the reported input/cache figures, for tests (snapshots) that must
    not change whenever the prompt's wording does."""
    if chunks is not None and not s:
        s = "".join(chunks)
    return Reply("text", _chunk(s, chunk_size, chunks), delay, stop_reason, output_tokens=output_tokens, input_usage=input_usage)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def http_error(
    status: int,
    message: str | None = None,
    *,
    error_type: str | None = None,
    retry_after_ms: int | None = 1,
    headers: dict[str, str] | None = None,
) -> Reply:
    """An HTTP error with the API's JSON error body. ``retry-after-ms`` keeps SDK retries fast."""
    etype = error_type or _ERROR_TYPES.get(status, "api_error")
    h = dict(headers or {})
    if retry_after_ms is not None:
        h.setdefault("retry-after-ms", str(retry_after_ms))
    return Reply(
        "http_error",
        status=status,
        error_type=etype,
        error_message=message or {401: "invalid x-api-key", 429: "Number of request tokens has exceeded your rate limit", 529: "Overloaded"}.get(status, "Internal server error"),
        headers=h,
        stop_reason=None,
    )


def prompt_too_long(tokens: int = 210_000, limit: int = 200_000) -> Reply:
    """The 400 the API returns when the request is over the context window."""
    return http_error(400, f"prompt is too long: {tokens} tokens > {limit} maximum", retry_after_ms=None)


def stream_error(
    before: str = "", *, error_type: str = "overloaded_error", message: str = "Overloaded", chunk_size: int | None = 16
) -> Reply:
    """Stream some text, then an SSE ``event: error`` (the SDK raises APIStatusError, status 200)."""
    return Reply("stream_error", _chunk(before, chunk_size, None), error_type=error_type, error_message=message, stop_reason=None)


def drop(before: str = "", *, chunk_size: int | None = 16) -> Reply:
    """Stream some text, then close the socket mid chunked body (httpx2.RemoteProtocolError)."""
    return Reply("drop", _chunk(before, chunk_size, None), stop_reason=None)


def no_stop(s: str = "", *, chunk_size: int | None = 16) -> Reply:
    """A stream that ends cleanly at the HTTP level but has no message_delta / stop_reason."""
    return Reply("no_stop", _chunk(s, chunk_size, None), stop_reason=None)


def hang(seconds: float = 30.0) -> Reply:
    """Accept the request and send nothing for ``seconds`` (client timeout)."""
    return Reply("hang", seconds=seconds, stop_reason=None)


# -- misbehaving servers: the fault suite's modes (tests/test_faults.py)


def ping_forever(seconds: float = 30.0, *, every: float = 0.05) -> Reply:
    """Headers, message_start, then only ``ping`` events for ``seconds``: no content, ever."""
    return Reply("ping", delay=every, seconds=seconds, stop_reason=None)


def trickle(s: str = "word " * 400, *, every: float = 0.05) -> Reply:
    """A reply that arrives one word at a time, ``every`` seconds apart."""
    words = [w + " " for w in s.split()]
    return text(chunks=words, delay=every, chunk_size=None)


def huge(chars: int = 200_000) -> Reply:
    """A server that ignores max_tokens: ``chars`` characters of text in 1,000-character pieces."""
    return text("blah " * (chars // 5), chunk_size=1000)


def stalled_headers(seconds: float = 30.0) -> Reply:
    """Accept the connection and the request, then send nothing (not even headers)."""
    return hang(seconds)


def stalled_body(seconds: float = 30.0) -> Reply:
    """Send the headers and message_start, then nothing for ``seconds`` (no pings either)."""
    return Reply("stall_body", seconds=seconds, stop_reason=None)


def long_retry_after(seconds: int = 600, status: int = 429) -> Reply:
    """A 429 (or 529) that asks for a long wait in ``retry-after`` (seconds)."""
    return http_error(status, retry_after_ms=None, headers={"retry-after": str(seconds)})


def _sse_bytes(event: str, data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def _start_bytes() -> bytes:
    return _sse_bytes("message_start", {"type": "message_start", "message": {
        "id": "msg_fake_raw", "type": "message", "role": "assistant", "model": "claude-fake", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}})


def raw_stream(*pieces: bytes) -> Reply:
    """A 200 event stream whose bytes after the headers are exactly ``pieces`` (message_start first)."""
    return Reply("raw_stream", raw=[_start_bytes(), *pieces], stop_reason=None)


def _text_block(index: int = 0) -> bytes:
    return _sse_bytes("content_block_start", {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})


def _delta(text_: str, index: int = 0) -> bytes:
    return _sse_bytes("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text_}})


def invalid_utf8() -> Reply:
    """Some text, then a text delta whose bytes are not UTF-8."""
    bad = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "caf\xe9 \xff\xfe"}}\n\n'
    return raw_stream(_text_block(), _delta("Hello. "), bad)


def invalid_json() -> Reply:
    """Some text, then an event whose data is not JSON."""
    return raw_stream(_text_block(), _delta("Hello. "), b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"index\": 0, \"delta\": {\n\n")


def unknown_block() -> Reply:
    """A content block of a type no SDK knows, then a normal text block and a normal end."""
    return raw_stream(
        _sse_bytes("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "hologram", "data": "?"}}),
        _sse_bytes("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "hologram_delta", "data": "?"}}),
        _sse_bytes("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _text_block(1),
        _delta("After the unknown block.", 1),
        _sse_bytes("content_block_stop", {"type": "content_block_stop", "index": 1}),
        _sse_bytes("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 6}}),
        _sse_bytes("message_stop", {"type": "message_stop"}),
    )


def raw_http(status: int, body: bytes = b"", content_type: str | None = None) -> Reply:
    """An HTTP answer that is not the API's: any status, any body, any (or no) content-type."""
    return Reply("raw_http", status=status, raw=[body], content_type=content_type, stop_reason=None)


def html_500() -> Reply:
    """A proxy's HTML error page with status 500."""
    return raw_http(500, b"<html><head><title>500 Internal Server Error</title></head><body><h1>Oops</h1>[bold]x[/bold]</body></html>", "text/html")


def empty_502() -> Reply:
    """A 502 with an empty body and no content-type."""
    return raw_http(502)


# ---------------------------------------------------------------------------
# Structured output (output_config.format)
#
# What the API refuses in a schema (docs/fake-api.md, "Structured output"), and a check that a
# scripted reply follows the schema it was asked for, so a test cannot script JSON that the
# real constrained decoding could never produce.

SCHEMA_CONSTRAINTS = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "maxItems", "minProperties", "maxProperties",
)


def schema_problem(fmt: Any) -> str | None:
    """Why the API would answer 400 to this ``output_config.format``, or None."""
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        return "output_config.format: expected {type: 'json_schema', schema: {...}}"
    root = fmt["schema"]
    defs = {**(root.get("$defs") or {}), **(root.get("definitions") or {})}

    def walk(node: Any, path: str, refs: tuple[str, ...]) -> str | None:
        if isinstance(node, list):
            return next((p for i, n in enumerate(node) if (p := walk(n, f"{path}[{i}]", refs))), None)
        if not isinstance(node, dict):
            return None
        for k in SCHEMA_CONSTRAINTS:
            if k in node:
                return f"output_config.format.schema{path}: '{k}' is not supported"
        if node.get("minItems", 0) not in (0, 1):
            return f"output_config.format.schema{path}: minItems other than 0 or 1 is not supported"
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if ref == "#" or name in refs:
                return f"output_config.format.schema{path}: recursive schemas are not supported"
            if name in defs:
                return walk(defs[name], f"{path}.$ref", refs + (name,))
        if (node.get("type") == "object" or "properties" in node) and node.get("additionalProperties") is not False:
            return f"output_config.format.schema{path}: objects must set additionalProperties: false"
        for key in ("properties", "$defs", "definitions"):
            for name, sub in (node.get(key) or {}).items():
                if (p := walk(sub, f"{path}.{key}.{name}", refs + ((name,) if key != "properties" else ()))):
                    return p
        for key in ("items", "anyOf", "allOf"):
            if key in node and (p := walk(node[key], f"{path}.{key}", refs)):
                return p
        return None

    return walk(root, "", ())


_JSON_TYPES: dict[str, Any] = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def schema_mismatch(value: Any, schema: dict[str, Any], path: str = "$") -> str | None:
    """Where ``value`` breaks ``schema`` (the subset structured output uses), or None."""
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} is not one of {schema['enum']}"
    if "anyOf" in schema:
        return None if any(schema_mismatch(value, s, path) is None for s in schema["anyOf"]) else f"{path}: matches no anyOf branch"
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        ok = any(isinstance(value, _JSON_TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool)) for t in names)
        if not ok:
            return f"{path}: expected {types}, got {type(value).__name__}"
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        missing = [k for k in schema.get("required") or [] if k not in value]
        if missing:
            return f"{path}: missing {missing}"
        extra = [k for k in value if k not in props]
        if extra and schema.get("additionalProperties") is False:
            return f"{path}: unexpected {extra}"
        return next((p for k, v in value.items() if k in props and (p := schema_mismatch(v, props[k], f"{path}.{k}"))), None)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return next((p for i, v in enumerate(value) if (p := schema_mismatch(v, schema["items"], f"{path}[{i}]"))), None)
    return None


def example_for(schema: dict[str, Any]) -> Any:
    """The smallest value that follows ``schema``: the default reply to a structured request."""
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return example_for(schema["anyOf"][0])
    t = schema.get("type")
    t = t[0] if isinstance(t, list) else t
    if t == "object":
        props = schema.get("properties") or {}
        return {k: example_for(props.get(k, {})) for k in schema.get("required") or []}
    return {"array": [], "string": "", "integer": 0, "number": 0, "boolean": False, "null": None}.get(str(t))


def _off_schema(body: dict[str, Any], reply: Reply) -> str | None:
    """Why a scripted reply could not answer this request's output_config.format, or None."""
    schema = ((body.get("output_config") or {}).get("format") or {}).get("schema")
    if schema is None or reply.kind != "text" or reply.stop_reason != "end_turn":
        return None
    try:
        wrong = schema_mismatch(json.loads(reply.text), schema)
    except ValueError:
        wrong = "not JSON"
    return f"the scripted reply does not follow output_config.format: {wrong}" if wrong else None


def json_reply(obj: Any, **kw: Any) -> Reply:
    """A streamed reply whose text is ``obj`` as JSON: what a structured-output request returns."""
    return text(json.dumps(obj), **kw)


def capabilities(*, structured_outputs: bool) -> dict[str, Any]:
    """A Models API ``capabilities`` object (every key present, as the API sends it)."""
    yes, no = {"supported": True}, {"supported": False}
    return {
        "batch": yes, "citations": yes, "code_execution": no, "image_input": yes, "pdf_input": yes,
        "context_management": {"supported": False},
        "effort": {"supported": True, "low": yes, "medium": yes, "high": yes, "max": yes},
        "server_tools": {"supported": False, "code_execution": no, "web_search": no},
        "structured_outputs": yes if structured_outputs else no,
        "thinking": {"supported": True, "types": {"adaptive": yes, "between_tools": no, "disabled": no, "enabled": no}},
    }


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    usage: dict[str, int] = field(default_factory=dict)  # what the server reported for it
    thinking_tokens: int = 0  # thinking mode: output tokens spent thinking
    output_tokens: int = 0  # what the server billed as output (thinking included)
    reply_kind: str = ""


# ---------------------------------------------------------------------------
# Cache accounting


TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
TTL_ORDER_MESSAGE = (
    "A cache_control block with ttl='1h' cannot come after one with ttl='5m': blocks with a "
    "longer ttl must come before blocks with a shorter ttl (tools, then system, then messages)."
)


def breakpoint_ttl(block: Any) -> str:
    """'5m' or '1h' for a block with ``cache_control`` (the API's default is 5 minutes)."""
    cc = block.get("cache_control") if isinstance(block, dict) else None
    return str((cc or {}).get("ttl") or "5m")


def _strip_cache_control(block: Any) -> Any:
    if isinstance(block, dict):
        return {k: _strip_cache_control(v) for k, v in block.items() if k != "cache_control"}
    if isinstance(block, list):
        return [_strip_cache_control(v) for v in block]
    return block


def flatten_blocks(body: dict[str, Any], *, with_ttl: bool = False) -> list[tuple]:
    """The request as cacheable blocks in order tools -> system -> messages.

    Returns (identity, tokens, has_breakpoint) per block, plus the breakpoint's TTL ('5m'
    or '1h') when ``with_ttl``. The identity is the canonical JSON of the block without
    ``cache_control`` (moving a breakpoint or changing its TTL does not change the
    content), plus its role for message blocks so identical text in another role differs.
    """
    out: list[tuple] = []

    def add(block: Any, role: str) -> None:
        bp = isinstance(block, dict) and "cache_control" in block
        ttl = breakpoint_ttl(block) if bp else ""
        if isinstance(block, str):
            block = {"type": "text", "text": block}
        canon = json.dumps(_strip_cache_control(block), sort_keys=True, ensure_ascii=False)
        out.append((role + ":" + canon, max(1, len(canon) // 4), bp) + ((ttl,) if with_ttl else ()))

    for tool in body.get("tools") or []:
        add(tool, "tool")
    system = body.get("system")
    if isinstance(system, str) and system:
        add(system, "system")
    elif isinstance(system, list):
        for b in system:
            add(b, "system")
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if isinstance(content, str):
            add(content, msg.get("role", "user"))
        else:
            for b in content or []:
                add(b, msg.get("role", "user"))
    return out


class CacheControlError(ValueError):
    """A ttl the API does not know, or a 1h breakpoint after a 5m one: the API answers 400."""


def check_cache_control(body: dict[str, Any]) -> None:
    """Raise CacheControlError where the real API would refuse the request's breakpoints."""
    ttls = [b[3] for b in flatten_blocks(body, with_ttl=True) if b[2]]
    bad = [t for t in ttls if t not in TTL_SECONDS]
    if bad:
        raise CacheControlError(f"cache_control.ttl: Input should be '5m' or '1h' (got {bad[0]!r})")
    if "1h" in ttls and "5m" in ttls and ttls.index("5m") < len(ttls) - 1 - ttls[::-1].index("1h"):
        raise CacheControlError(TTL_ORDER_MESSAGE)


class PromptCache:
    """Prefix cache with the documented rules (see docs/fake-api.md).

    - an entry is written at each ``cache_control`` breakpoint: the prefix up to and including it;
    - a request reads the longest live entry ending at a block boundary at most 20 blocks
      before one of its breakpoints (the last one included) that is a byte-identical prefix;
    - a prefix under 1,024 tokens is neither written nor read;
    - an entry lives 5 minutes, or 1 hour when its breakpoint says ``"ttl": "1h"``; a read
      refreshes it and the shorter entries inside the prefix read (their content was used);
    - input_tokens = tokens after the read prefix that are not being written,
      cache_creation = tokens newly written (1h up to the last 1h breakpoint, 5m after it),
      cache_read = tokens read.
    ``clock`` is in seconds; ``advance`` moves it forward so tests can pause without sleeping.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, min_tokens: int = MIN_CACHEABLE_TOKENS) -> None:
        self.min_tokens = min_tokens
        self.entries: dict[str, tuple[float, float]] = {}  # prefix key -> (ttl seconds, expires at)
        self.lock = threading.Lock()
        self.clock = clock
        self.offset = 0.0

    def now(self) -> float:
        return self.clock() + self.offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds

    def _live(self, key: str, now: float) -> bool:
        entry = self.entries.get(key)
        return entry is not None and entry[1] > now

    def usage(self, body: dict[str, Any]) -> dict[str, int]:
        """The three totals the API reports (``account`` adds the TTL breakdown)."""
        u = self.account(body)
        return {k: u[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}

    def account(self, body: dict[str, Any]) -> dict[str, Any]:
        """Usage for one request, updating the cache; raises CacheControlError like the API's 400."""
        blocks = flatten_blocks(body, with_ttl=True)
        model = str(body.get("model", ""))
        prefix_keys: list[str] = []  # key of prefix ending at block i
        cum_tokens: list[int] = []
        h = hashlib.sha256(model.encode())
        total = 0
        for ident, tok, _bp, _ttl in blocks:
            h.update(b"\x00" + ident.encode())
            prefix_keys.append(h.copy().hexdigest())
            total += tok
            cum_tokens.append(total)
        check_cache_control(body)
        breakpoints = [i for i, b in enumerate(blocks) if b[2]]
        ttls = [blocks[i][3] for i in breakpoints]
        with self.lock:
            now = self.now()
            read_end = -1  # index of last block of the read prefix
            for b in breakpoints:
                for j in range(b, max(-1, b - LOOKBACK_BLOCKS - 1), -1):
                    if j <= read_end:
                        break
                    if cum_tokens[j] >= self.min_tokens and self._live(prefix_keys[j], now):
                        read_end = j
                        break
            read = cum_tokens[read_end] if read_end >= 0 else 0
            for key in prefix_keys[: read_end + 1]:  # the hit refreshes what it used
                if self._live(key, now):
                    ttl = self.entries[key][0]
                    self.entries[key] = (ttl, now + ttl)
            # Billing as documented for mixed TTLs: read up to A (the hit), 1h writes from A to
            # the last 1h breakpoint after it (B), 5m writes from B to the last breakpoint (C).
            write_end = one_hour_end = read_end
            for b, ttl_name in zip(breakpoints, ttls):
                if cum_tokens[b] < self.min_tokens:
                    continue
                ttl = TTL_SECONDS[ttl_name]
                if b > write_end and not self._live(prefix_keys[b], now):
                    write_end = b
                    if ttl_name == "1h":
                        one_hour_end = b
                old = self.entries.get(prefix_keys[b]) if self._live(prefix_keys[b], now) else None
                ttl = max(ttl, old[0]) if old else ttl
                self.entries[prefix_keys[b]] = (ttl, now + ttl)
            write = (cum_tokens[write_end] - read) if write_end > read_end else 0
            write_1h = (cum_tokens[one_hour_end] - read) if one_hour_end > read_end else 0
        return {
            "input_tokens": total - read - write,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write - write_1h, "ephemeral_1h_input_tokens": write_1h},
        }


# ---------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # -- helpers
    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_fake_{next(self.server.api.ids)}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _chunk_out(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _sse(self, event: str, data: dict[str, Any]) -> None:
        self._chunk_out(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

    # -- routes
    def do_GET(self) -> None:  # noqa: N802
        api = self.server.api
        path = self.path.split("?", 1)[0]
        if path.rstrip("/") == "/v1/models" and api.models:
            self._send_json(200, {"data": [{"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
                                           for m in api.models], "has_more": False, "first_id": api.models[0], "last_id": api.models[-1]})
            return
        if path.startswith("/v1/models/") and api.max_input_tokens is not None:
            model = path.rsplit("/", 1)[-1]
            # The Models API's ModelInfo (GET /v1/models/{id}); GETs are not in `requests`.
            info = {
                "type": "model", "id": model, "display_name": model, "created_at": "2026-01-01T00:00:00Z",
                "lifecycle": "active", "max_input_tokens": api.max_input_tokens, "max_tokens": 64_000,
            }
            if api.structured_outputs is not None:
                info["capabilities"] = capabilities(structured_outputs=api.structured_outputs)
            self._send_json(200, info)
            return
        self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"fake API: no GET {path}"}})

    def do_POST(self) -> None:  # noqa: N802
        api = self.server.api
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "invalid JSON"}})
            return
        path = self.path.split("?", 1)[0]
        rec = RecordedRequest(path, {k.lower(): v for k, v in self.headers.items()}, body)
        with api.lock:
            api.requests.append(rec)
        if path.rstrip("/") != "/v1/messages":
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": f"fake API: no route {path}"}})
            return
        if api.require_key is not None and not api.key_ok(rec.headers):
            rec.reply_kind = "http_error"
            self._send_json(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
            return
        try:
            check_cache_control(body)  # before a scripted reply is used up, as the API checks first
        except CacheControlError as exc:
            rec.reply_kind = "http_error"
            self._send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": str(exc)}})
            return
        refusal = api.refuse(body)
        if refusal:
            rec.reply_kind = "http_error"
            self._send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": refusal}})
            return
        reply = api.next_reply(body)
        rec.reply_kind = reply.kind
        if (wrong := _off_schema(body, reply)) is not None:  # a test scripted what constrained decoding could not produce
            self._send_json(500, {"type": "error", "error": {"type": "api_error", "message": f"fake API: {wrong}"}})
            return
        if reply.kind == "http_error":
            self._send_json(
                reply.status,
                {"type": "error", "error": {"type": reply.error_type, "message": reply.error_message}},
                reply.headers,
            )
            return
        if reply.kind == "hang":
            api.stopping.wait(reply.seconds)
            self.close_connection = True
            return
        if reply.kind == "raw_http":
            data = b"".join(reply.raw)
            self.send_response(reply.status)
            if reply.content_type:
                self.send_header("content-type", reply.content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return
        if reply.kind in ("ping", "stall_body", "raw_stream"):
            self._misbehave(reply)
            return
        usage = api.cache.account(body)
        if api.flavor == "local":  # Ollama and friends: no cache fields at all
            usage = {"input_tokens": usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]}
            if api.context_window is not None:
                usage["input_tokens"] = min(usage["input_tokens"], api.context_window)  # Ollama cuts the prompt silently
        if reply.input_usage is not None:
            usage = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, **reply.input_usage}
        rec.usage = json.loads(json.dumps(usage))  # a copy, nested breakdown included
        out_tokens = reply.output_tokens if reply.output_tokens is not None else len(reply.text) // 4 + 1
        thinking_tokens = 0
        omitted = ((body.get("thinking") or {}).get("display") or "summarized") == "omitted"
        if api.thinking and reply.kind == "text":
            effort = str((body.get("output_config") or {}).get("effort") or "high")
            budget = int(body.get("max_tokens") or 0)
            thinking_tokens = min(THINKING_TOKENS.get(effort, THINKING_TOKENS["high"]), budget)
            room = budget - thinking_tokens
            if out_tokens > room:  # thinking ate the reply's room: cut the text where it runs out
                keep = max(room, 0) * 4
                reply = Reply("text", _chunk(reply.text[:keep], 16, None), reply.delay, "max_tokens",
                              output_tokens=max(room, 0), input_usage=reply.input_usage)
                out_tokens = max(room, 0)
            rec.thinking_tokens = thinking_tokens
        out_tokens += thinking_tokens
        rec.output_tokens = out_tokens
        msg_id = f"msg_fake_{next(api.ids):06d}"
        model = body.get("model", "claude-fake")
        if not body.get("stream"):
            if reply.kind != "text":
                self._send_json(500, {"type": "error", "error": {"type": "api_error", "message": "scripted stream failure on a non-stream request"}})
                return
            for i in range(len(reply.chunks)):
                if reply.delay_before(i):
                    time.sleep(reply.delay_before(i))
            self._send_json(
                200,
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": ([{"type": "thinking", "thinking": "" if omitted else THINKING_TEXT, "signature": "c2lnbmF0dXJl"}] if thinking_tokens else [])
                    + [{"type": "text", "text": reply.text}],
                    "stop_reason": reply.stop_reason,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": out_tokens},
                },
            )
            return
        self._stream(reply, msg_id, model, usage, out_tokens, thinking=api.thinking, thinking_tokens=thinking_tokens, omitted=omitted)

    def _stream(
        self,
        reply: Reply,
        msg_id: str,
        model: str,
        usage: dict[str, Any],
        out_tokens: int,
        *,
        thinking: bool = False,
        thinking_tokens: int = 0,
        omitted: bool = False,
    ) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", f"req_fake_{next(self.server.api.ids)}")
        self.end_headers()
        try:
            self._sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": msg_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {**usage, "output_tokens": 1},
                    },
                },
            )
            idx = 0
            if thinking and reply.kind != "http_error":
                self._sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                  "content_block": {"type": "thinking", "thinking": "", "signature": ""}})
                pace = self.server.api.thinking_seconds_per_ktok * thinking_tokens / 1000
                if pace and self.server.api.stopping.wait(pace):  # thinking takes time before the first word
                    return
                if not omitted:
                    self._sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                      "delta": {"type": "thinking_delta", "thinking": THINKING_TEXT}})
                self._sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "signature_delta", "signature": "c2lnbmF0dXJl"}})
                self._sse("content_block_stop", {"type": "content_block_stop", "index": 0})
                idx = 1
            self._sse("content_block_start", {"type": "content_block_start", "index": idx, "content_block": {"type": "text", "text": ""}})
            self._sse("ping", {"type": "ping"})
            for i, chunk in enumerate(reply.chunks):
                if reply.delay_before(i):
                    if self.server.api.stopping.wait(reply.delay_before(i)):
                        break
                self._sse("content_block_delta", {"type": "content_block_delta", "index": idx, "delta": {"type": "text_delta", "text": chunk}})
            if reply.kind == "drop":
                # Close without the terminating zero-length chunk: an incomplete chunked body.
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if reply.kind == "stream_error":
                self._sse("error", {"type": "error", "error": {"type": reply.error_type, "message": reply.error_message}})
            else:
                self._sse("content_block_stop", {"type": "content_block_stop", "index": idx})
                if reply.kind == "text":
                    self._sse(
                        "message_delta",
                        {
                            "type": "message_delta",
                            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                            "usage": {"output_tokens": out_tokens},
                        },
                    )
                    self._sse("message_stop", {"type": "message_stop"})
            self._chunk_out(b"")  # terminating chunk
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client went away (cancelled); nothing to do


    def _misbehave(self, reply: Reply) -> None:
        """The event-stream fault modes: pings only, a body that stalls, or raw bytes."""
        api = self.server.api
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        try:
            if reply.kind == "raw_stream":
                for piece in reply.raw:
                    self._chunk_out(piece)
                self._chunk_out(b"")
                return
            self._chunk_out(_start_bytes())
            if reply.kind == "stall_body":
                api.stopping.wait(reply.seconds)
            else:
                self._chunk_out(_text_block())
                end = time.monotonic() + reply.seconds
                every = reply.delay if isinstance(reply.delay, float | int) and reply.delay > 0 else 0.05
                while time.monotonic() < end and not api.stopping.wait(every):
                    self._sse("ping", {"type": "ping"})
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: FakeAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (a cancelled turn, a `hang` reply timing out) can break the
        # pipe anywhere, also in a JSON error reply; that is the test's point, not news.
        # Anything else is a bug in the fake server and is still printed.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


class FakeAPI:
    """The fake Messages API server. Start it as a context manager or with ``start()``."""

    def __init__(
        self,
        *,
        require_key: str | None = None,
        default_text: str = "(fake reply)",
        clock: Callable[[], float] = time.monotonic,
        thinking: bool = False,
        flavor: Literal["anthropic", "local"] = "anthropic",
    ):
        self.requests: list[RecordedRequest] = []
        self.queue: deque[Reply] = deque()
        self.handler: Callable[[dict[str, Any]], Reply | str] | None = None
        self.require_key = require_key
        self.default_text = default_text
        # What GET /v1/models/{id} reports as the input window; None: that endpoint is a 404
        # (a proxy without the Models API), so callers must fall back.
        self.max_input_tokens: int | None = 200_000
        # Structured output: None accepts output_config.format and says nothing in the Models API;
        # True / False is reported there as capabilities.structured_outputs, and False refuses it.
        self.structured_outputs: bool | None = None
        # Behave like an adaptive-thinking model (a thinking block first, thinking tokens spent
        # against max_tokens, 400 on thinking disabled). Off: the plain pre-thinking fake.
        self.thinking = thinking and flavor == "anthropic"
        # "local": an Ollama-like server (no key, no thinking, no cache fields in usage, a model
        # list at GET /v1/models, and optionally a small context window that cuts the prompt).
        self.flavor = flavor
        self.models: list[str] = ["llama3.2"] if flavor == "local" else []
        self.context_window: int | None = None
        if flavor == "local":
            self.max_input_tokens = None
        # Seconds a thinking block takes per 1,000 thinking tokens before the text starts (the
        # benchmark's time to first visible token); 0 in tests.
        self.thinking_seconds_per_ktok = 0.0
        self.cache = PromptCache(clock, THINKING_MIN_CACHEABLE_TOKENS if self.thinking else MIN_CACHEABLE_TOKENS)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> FakeAPI:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- scripting
    def advance(self, seconds: float) -> None:
        """Move the cache's clock forward: a reader's pause, without sleeping."""
        self.cache.advance(seconds)

    def enqueue(self, *replies: Reply | str) -> None:
        with self.lock:
            for r in replies:
                self.queue.append(text(r) if isinstance(r, str) else r)

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            if self.queue:
                return self.queue.popleft()
        if self.handler is not None:
            r = self.handler(body)
            return text(r) if isinstance(r, str) else r
        schema = ((body.get("output_config") or {}).get("format") or {}).get("schema")
        return json_reply(example_for(schema)) if isinstance(schema, dict) else text(self.default_text)

    def refuse(self, body: dict[str, Any]) -> str | None:
        """The 400 the API gives to what a model does not take (a bad or unsupported
        ``output_config.format``; in thinking mode what today's models no longer take), or None."""
        fmt = (body.get("output_config") or {}).get("format")
        if fmt is not None:
            if self.structured_outputs is False:
                return "output_config.format: structured outputs are not supported for this model"
            if (problem := schema_problem(fmt)) is not None:
                return problem
        if not self.thinking:
            return None
        if (body.get("thinking") or {}).get("type") == "disabled":
            return "thinking.type: 'disabled' is not supported for this model"
        for name in ("temperature", "top_p", "top_k"):
            if name in body:
                return f"{name} is not supported for this model"
        msgs = body.get("messages") or []
        if msgs and msgs[-1].get("role") == "assistant":
            return "assistant message prefill is not supported for this model"
        if str((body.get("output_config") or {}).get("effort") or "high") not in THINKING_TOKENS:
            return "output_config.effort: unknown value"
        return None

    def key_ok(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        return headers.get("x-api-key") == self.require_key or auth == f"Bearer {self.require_key}"

    # -- inspection
    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests]

    def total_usage(self) -> dict[str, Any]:
        tot: dict[str, Any] = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        split = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
        for r in self.requests:
            for k in tot:
                tot[k] += r.usage.get(k, 0)
            w5, w1 = cache_writes(r.usage)
            split["ephemeral_5m_input_tokens"] += w5
            split["ephemeral_1h_input_tokens"] += w1
        tot["cache_creation"] = split
        return tot


def cache_writes(usage: dict[str, Any]) -> tuple[int, int]:
    """(5-minute, 1-hour) cache-write tokens; without a breakdown every write is 5-minute."""
    split = usage.get("cache_creation")
    if isinstance(split, dict):
        return int(split.get("ephemeral_5m_input_tokens") or 0), int(split.get("ephemeral_1h_input_tokens") or 0)
    return int(usage.get("cache_creation_input_tokens") or 0), 0


def billed_input(usage: dict[str, Any]) -> float:
    """Billed-input tokens: input + 1.25 x 5m writes + 2 x 1h writes + 0.1 x cache reads."""
    w5, w1 = cache_writes(usage)
    return usage.get("input_tokens", 0) + 1.25 * w5 + 2 * w1 + 0.1 * usage.get("cache_read_input_tokens", 0)


if pytest is not None:

    @pytest.fixture
    def fake_api():
        """A started FakeAPI (this module is a pytest plugin, registered in conftest.py), in
        thinking mode: tests see what today's default model sends."""
        with FakeAPI(thinking=True) as api:
            yield api

    @pytest.fixture
    def api(fake_api):
        """The same server under the short name most tests use."""
        return fake_api
