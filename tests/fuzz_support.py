"""Shared pieces of the bad-input fuzz suites (``test_fuzz.py``, ``test_fuzz_http.py``).

- A JSON writer that can say what ``json.dumps`` will not: ``NaN``, ``1e999``, escaped lone
  surrogates, duplicate keys, invalid UTF-8 (``Raw`` and ``Pairs``).
- Hypothesis strategies: valid chat requests (with the echo provider's expected answer), the same
  requests mutated at every field, byte-level damage, headers, methods and paths.
- ``check_response``: the properties every answer must have (a correct 2xx, or a 4xx that is exactly
  OpenAI's envelope; never a 5xx, never a traceback or a source path).
- ``call_asgi``: a raw ASGI driver for what httpx will not send (any header bytes, any path), which
  also checks the ASGI message sequence the gateway emits.

Budgets: ``REC_LLM_FUZZ_SCALE=10`` multiplies every suite's example count (a deeper local run);
``REC_LLM_FUZZ_RANDOM=1`` drops the fixed derandomized seed so each run explores new inputs.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import rec_llm_gateway

# -- budgets -----------------------------------------------------------------------------------------

SCALE = float(os.environ.get("REC_LLM_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("REC_LLM_FUZZ_RANDOM", "") not in ("", "0")
TIMEOUT = 10.0
"""Seconds any one request may take before the case fails as a hang."""


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings for one suite: ``examples`` cases (times the scale), reproducible in CI."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


# -- a JSON writer for bodies json.dumps cannot produce ---------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text written verbatim (``NaN``, ``1e999``, ``"\\ud800"``, deep nesting, ...)."""

    text: str
    finite: bool = True
    """False when this token is a number Python reads as NaN or an infinity."""


@dataclass(frozen=True)
class Pairs:
    """A JSON object written with these keys in this order, repeats included."""

    items: tuple[tuple[str, Any], ...]


def encode(value: Any, *, ascii_only: bool = True) -> bytes:
    """``value`` as JSON bytes. With ``ascii_only=False`` lone surrogates become invalid UTF-8."""
    return _write(value, ascii_only).encode("utf-8", "surrogatepass")


def _write(value: Any, ascii_only: bool) -> str:
    if isinstance(value, list | dict) and len(value) > 16:
        try:  # the C encoder, for big plain subtrees; Raw and Pairs make it give up
            return json.dumps(value, ensure_ascii=ascii_only, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError):
            pass
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=ascii_only)
    if value is None or isinstance(value, bool | int):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("NaN" if math.isnan(value) else "1e999")
    if isinstance(value, Pairs):
        items = value.items
    elif isinstance(value, dict):
        items = tuple(value.items())
    elif isinstance(value, list | tuple):
        return "[" + ",".join(_write(item, ascii_only) for item in value) + "]"
    else:  # pragma: no cover - strategies only build the shapes above
        raise TypeError(type(value))
    return "{" + ",".join(f"{_write(k, ascii_only)}:{_write(v, ascii_only)}" for k, v in items) + "}"


# -- what Python's own parser makes of a body (the oracle for "must be refused") -------------------


_INVALID = object()


def python_view(body: bytes) -> Any:
    """The body as Python's strict JSON parser reads it, or ``_INVALID``.

    Python's parser is at least as lenient as the gateway's (it also takes escaped lone surrogates
    and nesting deeper than 200), so a body it refuses must be refused by the gateway too.
    """
    try:
        text = body.decode("utf-8")
        return json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError):
        return _INVALID


def _parse_int(text: str) -> int:
    # Python limits int() to 4300 digits; only the value's finiteness matters here.
    return int(text) if len(text) < 4000 else 10**3999


def has_non_finite(value: Any) -> bool:
    """Whether NaN or an infinity appears anywhere in a parsed JSON value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# -- strings -----------------------------------------------------------------------------------------

EDGE_STRINGS = [
    "",
    " ",
    "\u0000",
    "\x7f",
    "\t\r\n",
    "\ufeff",
    "\u200b",
    "\u202e",
    "\u2028\u2029",
    "\U0010ffff",
    "\U0001f600",
    "\U0001f469\u200d\U0001f4bb",
    "e\u0301",
    "\ufffd",
    "\u0130ß\ufb01",
    "\U0001d573\U0001d58a",
    "\\",
    '"',
    "</script>",
    "${jndi:ldap://x}",
    "%s%n%x",
    "null",
    "NaN",
    "[DONE]",
    "data: [DONE]\n\n",
    "\r\n\r\nHTTP/1.1 200 OK",
    "1e999",
]
LONE_SURROGATES = ["\ud800", "\udfff", "a\ud83d", "\ude00b", "\udc00\ud800"]

plain_text = st.text(max_size=40)
edge_text = st.sampled_from(EDGE_STRINGS)
# Long runs of one kind: pasted base64, long words and numbers, and the edge strings repeated.
big_text = st.builds(
    lambda size, unit: unit * (size // max(1, len(unit))),
    st.sampled_from([1_000, 20_000, 100_000]),
    edge_text | st.sampled_from(["a", "7", "aB3+/", "a.b", "x@y", "a b "]),
)
text = st.one_of(plain_text, plain_text, plain_text, edge_text, edge_text, big_text)
"""Well-formed strings (no lone surrogates): what a correct client may send."""
bad_text = st.one_of(text, st.sampled_from(LONE_SURROGATES))
_TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-"
token = st.text(alphabet=_TOKEN_CHARS, min_size=1, max_size=24)

# -- numbers and junk values -------------------------------------------------------------------------

NON_FINITE = [
    Raw("NaN", False),
    Raw("Infinity", False),
    Raw("-Infinity", False),
    Raw("1e999", False),
    Raw("-1E+400", False),
    Raw("1e0309", False),
    Raw("1" + "0" * 290 + "e20", False),  # overflows with a 2-digit exponent: a long mantissa
    Raw("-" + "9" * 250 + ".5e60", False),
    Raw("1" + "0" * 320, True),  # a big integer, not a float: finite
    Raw("1" + "0" * 320 + ".0", False),
]
ODD_NUMBERS = [
    Raw("-0"),
    Raw("0e0"),
    Raw("1e-400"),
    Raw("0." + "0" * 400 + "1e400"),
    Raw("123456789012345678901234567890"),
    Raw("-123456789012345678901234567890"),
    Raw("1.7976931348623157e308"),
    Raw("5e-324"),
    Raw("1E2"),
]
BAD_TOKENS = [
    Raw('"\\ud800"'),
    Raw('"\\udfff\\ud800"'),
    Raw('"\\u0000"'),
    Raw('"\\u00"'),
    Raw("tru"),
    Raw("nul"),
    Raw("'single'"),
    Raw("[1,]"),
    Raw('{"a":1,}'),
    Raw("01"),
    Raw("+1"),
    Raw(".5"),
    Raw("0x10"),
    Raw("undefined"),
]

finite_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
)
numbers = finite_numbers | st.sampled_from(ODD_NUMBERS)


def deep(depth: int, kind: str) -> Raw:
    if kind == "list":
        return Raw("[" * depth + "]" * depth)
    return Raw('{"a":' * depth + "1" + "}" * depth)


deep_values = st.builds(
    deep, st.sampled_from([50, 199, 201, 1_000, 50_000]), st.sampled_from(["list", "dict"])
)
json_values = st.recursive(
    st.none() | st.booleans() | finite_numbers | plain_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(plain_text, children, max_size=4),
    max_leaves=12,
)
junk = st.one_of(
    json_values,
    st.sampled_from(ODD_NUMBERS),
    st.sampled_from(NON_FINITE),
    st.sampled_from(BAD_TOKENS),
    bad_text,
    deep_values,
    st.builds(lambda n: [{}] * n, st.sampled_from([100, 20_000])),
    st.builds(lambda key, value: Pairs(((key, value), (key, value))), plain_text, json_values),
)
"""Any value at all, valid JSON or not, in any shape."""

# -- valid chat requests -----------------------------------------------------------------------------

MODELS = st.one_of(
    st.sampled_from(["echo:echo-1", "echo-1", "gpt-4o-mini", "echo:gpt-4o"]),
    token.map(lambda name: f"echo:{name}"),
)


def _part(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    if kind == "text":
        return st.fixed_dictionaries({"type": st.just("text"), "text": text})
    if kind == "refusal":
        return st.fixed_dictionaries({"type": st.just("refusal"), "refusal": text})
    if kind == "image_url":
        image = st.fixed_dictionaries(
            {"url": st.sampled_from(["https://example.com/a.png", "data:image/png;base64,iVBORw0KGgo="])},
            optional={"detail": st.sampled_from(["auto", "low", "high"])},
        )
        return st.fixed_dictionaries({"type": st.just("image_url"), "image_url": image})
    if kind == "input_audio":
        audio = st.fixed_dictionaries(
            {"data": st.just("UklGRg=="), "format": st.sampled_from(["wav", "mp3"])}
        )
        return st.fixed_dictionaries({"type": st.just("input_audio"), "input_audio": audio})
    return st.fixed_dictionaries({"type": st.just("file"), "file": st.fixed_dictionaries({"file_id": token})})


text_parts = st.lists(_part("text"), min_size=1, max_size=3)
user_parts = st.lists(
    st.one_of(_part("text"), _part("image_url"), _part("input_audio"), _part("file")), min_size=1, max_size=3
)
tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": token,
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": token, "arguments": text}),
        }
    ),
    min_size=1,
    max_size=2,
)
name = {"name": token}
messages = st.one_of(
    st.fixed_dictionaries({"role": st.just("system"), "content": text | text_parts}, optional=name),
    st.fixed_dictionaries({"role": st.just("developer"), "content": text | text_parts}, optional=name),
    st.fixed_dictionaries({"role": st.just("user"), "content": text | user_parts}, optional=name),
    st.fixed_dictionaries(
        {"role": st.just("assistant")},
        optional={
            "content": st.none() | text | st.lists(_part("text") | _part("refusal"), min_size=1, max_size=2),
            "tool_calls": tool_calls,
            "refusal": st.none() | text,
            **name,
        },
    ),
    st.fixed_dictionaries({"role": st.just("tool"), "content": text | text_parts, "tool_call_id": token}),
    st.fixed_dictionaries({"role": st.just("function"), "content": st.none() | text, "name": token}),
)
unit = st.floats(min_value=0, max_value=2, allow_nan=False)
tools = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {"name": token},
                optional={
                    "description": text,
                    "parameters": st.just({"type": "object", "properties": {"q": {"type": "string"}}}),
                    "strict": st.booleans(),
                },
            ),
        }
    ),
    max_size=2,
)
OPTIONAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
    "temperature": unit,
    "top_p": st.floats(min_value=0, max_value=1, allow_nan=False),
    "n": st.integers(1, 4),
    "stop": st.none() | text | st.lists(text, max_size=4),
    "max_tokens": st.integers(1, 50) | st.integers(1),
    "max_completion_tokens": st.integers(1, 50),
    "presence_penalty": st.floats(-2, 2),
    "frequency_penalty": st.floats(-2, 2),
    "seed": st.integers(),
    "user": text,
    "tools": tools,
    "tool_choice": st.sampled_from(
        ["auto", "none", "required", {"type": "function", "function": {"name": "f"}}]
    ),
    "parallel_tool_calls": st.booleans(),
    "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
    "logprobs": st.booleans(),
    "top_logprobs": st.integers(0, 20),
    "metadata": st.dictionaries(token, plain_text, max_size=3),  # unknown to the schema: passed on
    "x_vendor_option": json_values,
}
_OPTIONAL_NAMES = sorted(OPTIONAL_FIELDS)


@st.composite
def _chat_requests(draw: st.DrawFn) -> dict[str, Any]:
    # A few optional fields per request (not a coin flip for each of twenty): cheaper to draw.
    request = {"model": draw(MODELS), "messages": draw(st.lists(messages, min_size=1, max_size=3))}
    for key in draw(st.lists(st.sampled_from(_OPTIONAL_NAMES), max_size=4, unique=True)):
        request[key] = draw(OPTIONAL_FIELDS[key])
    return request


chat_requests = _chat_requests()
"""Requests the gateway must answer with a 200 (echo provider)."""


def expected_echo(request: dict[str, Any]) -> str:
    """What the echo provider answers: the last user message's text, words re-joined."""
    text = ""
    for message in reversed(request["messages"]):
        if message["role"] == "user":
            content = message["content"]
            text = (
                content
                if isinstance(content, str)
                else "".join(part["text"] for part in content if part["type"] == "text")
            )
            break
    return "".join(re.findall(r"\S+\s*", text))


# -- mutations ----------------------------------------------------------------------------------------


def _locations(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON tree (dict keys and list indexes), as paths."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _locations(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:8]):
            found += _locations(item, (*path, index))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def mutated_requests(draw: st.DrawFn) -> Any:
    """A valid request with one to three fields replaced, deleted, duplicated or added."""
    request: Any = json.loads(json.dumps(draw(chat_requests)))  # a private deep copy
    for _ in range(draw(st.integers(1, 3))):
        places = _locations(request)
        path = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "duplicate"]))
        if not path:
            if action == "replace":
                return draw(junk)
            continue
        parent = _get(request, path[:-1])
        if isinstance(parent, Pairs):
            continue
        key = path[-1]
        if action == "replace":
            parent[key] = draw(junk)
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["role", "type", "content", "model", "x"]) | plain_text)] = draw(junk)
        elif action == "add":
            parent.insert(key, draw(junk))
        elif action == "duplicate" and isinstance(parent, dict):
            items = (*parent.items(), (key, draw(junk)))
            if len(path) == 1:
                return Pairs(items)  # the top-level object, with one key written twice
            _get(request, path[:-2])[path[-2]] = Pairs(items)
    return request


INVALID_UTF8 = [b"\xff", b"\xfe", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]


@st.composite
def damaged_bytes(draw: st.DrawFn) -> bytes:
    """A valid request body with bytes cut, inserted or replaced (invalid UTF-8 included)."""
    body = encode(draw(chat_requests))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["truncate", "insert", "replace", "utf8"]))
        if action == "truncate":
            body = body[:position]
        elif action == "insert":
            body = body[:position] + draw(st.binary(min_size=1, max_size=8)) + body[position:]
        elif action == "replace":
            body = body[:position] + draw(st.binary(min_size=1, max_size=4)) + body[position + 4 :]
        else:
            body = body[:position] + draw(st.sampled_from(INVALID_UTF8)) + body[position:]
    return body


raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"null",
            b"[]",
            b"{}",
            b'""',
            b"0",
            b"\xef\xbb\xbf{}",
            b"\x00" * 64,
            b" " * 1000,
            b"{" * 100_000,
        ]
    ),
    damaged_bytes(),
    st.builds(lambda value, ascii_only: encode(value, ascii_only=ascii_only), junk, st.booleans()),
)
"""Bodies that are not a chat request at all."""

# -- headers ------------------------------------------------------------------------------------------

junk_header_value = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b" ", b"\xff\xfe", b"\xb2", b"\x00", b"a\r\nx-injected: 1", b"x" * 20_000]),
    st.text(max_size=20).map(lambda value: value.encode("utf-8")),
)
HEADER_CHOICES: dict[bytes, st.SearchStrategy[bytes]] = {
    b"content-type": st.sampled_from(
        [b"application/json", b"text/plain", b"application/json; charset=utf-16", b"multipart/form-data"]
    )
    | junk_header_value,
    b"content-length": st.sampled_from(
        [b"0", b"1", b"-1", b"abc", b"\xb2", b"\xb9\xb3", b" 10", b"1e3", b"0x10", b"99999999999999999999999"]
    )
    | st.integers(0, 10**12).map(lambda n: str(n).encode())
    | junk_header_value,
    b"authorization": st.sampled_from(
        [b"Bearer", b"Bearer ", b"bearer x", b"Basic dXNlcjpwYXNz", b"Bearer a b c", b"BEARER \xff"]
    )
    | junk_header_value,
    b"x-api-key": junk_header_value,
    b"x-request-id": st.sampled_from([b"abc", b"abc\n", b"a" * 129, b"../../etc", b"r\x00", b"req_1 2"])
    | junk_header_value,
    b"traceparent": st.sampled_from(
        [
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            b"00-00000000000000000000000000000000-0000000000000000-01",
            b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            b"00-zz-yy-01",
        ]
    )
    | junk_header_value,
    b"tracestate": junk_header_value,
    b"origin": st.sampled_from(
        [b"https://app.example.com", b"https://app.example.com/", b"null", b"https://evil.example", b"\xff"]
    )
    | junk_header_value,
    b"access-control-request-method": st.sampled_from([b"POST", b"GET", b"\xff"]) | junk_header_value,
    b"transfer-encoding": st.sampled_from([b"chunked", b"gzip", b"identity"]),
    b"content-encoding": st.sampled_from([b"gzip", b"br", b"identity"]),
}
header_names = st.sampled_from(sorted(HEADER_CHOICES)) | st.binary(min_size=1, max_size=12)


@st.composite
def header_lists(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """Zero to six request headers, repeated names included."""
    headers = []
    for header in draw(st.lists(header_names, max_size=6)):
        value = draw(HEADER_CHOICES.get(header.lower(), junk_header_value))
        headers.append((header, value))
    return headers


# -- methods and paths --------------------------------------------------------------------------------

METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]) | st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10
)
SEGMENTS = [
    "v1",
    "chat",
    "completions",
    "models",
    "health",
    "providers",
    "usage",
    "stats",
    "echo",
    "echo:echo-1",
    "openapi.json",
    "..",
    ".",
    "",
    "%2e%2e",
    "%2F",
    "%00",
    "%ff",
    "é漢",
    "\U0001f600",
    "?x=1",
    "#frag",
]
segments = (
    st.sampled_from(SEGMENTS)
    | st.text(max_size=12)
    | st.builds(lambda n: "a" * n, st.sampled_from([300, 9_000]))
)
KNOWN_PATHS = [
    "/v1/chat/completions",
    "/chat/completions",
    "/v1/models",
    "/models",
    "/v1/models/echo:echo-1",
    "/health",
    "/providers",
    "/providers/echo/health",
    "/providers/echo/stats",
    "/usage",
    "/openapi.json",
]
paths = st.one_of(
    st.sampled_from(KNOWN_PATHS),
    st.sampled_from(KNOWN_PATHS).map(lambda path: path + "/"),
    st.lists(segments, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts)),
    st.builds(
        lambda known, tail: known + tail, st.sampled_from(KNOWN_PATHS), st.sampled_from(["/..", "//", "/x"])
    ),
)

# -- the properties of every answer -------------------------------------------------------------------

_SOURCE_DIR = str(Path(rec_llm_gateway.__file__).resolve().parent)
_LEAKS = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|site-packages/")
ENVELOPE_KEYS = {"message", "type", "param", "code"}


@dataclass
class Answer:
    """A response as the fuzz checks see it, whichever client produced it."""

    status: int
    headers: dict[str, str]
    body: bytes
    method: str = "POST"
    chunks: list[bytes] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def check_response(answer: Answer) -> Any:
    """The properties every gateway answer has; returns the parsed JSON body (or SSE text).

    A 2xx carries valid JSON (or an SSE stream); a 4xx is exactly OpenAI's envelope. Never a 5xx,
    never a traceback or a path into the source tree.
    """
    text = answer.text
    assert answer.status < 500, f"server error {answer.status}: {text[:500]}"
    assert not _LEAKS.search(text), f"internals leaked: {text[:500]}"
    assert _SOURCE_DIR not in text, f"source path leaked: {text[:500]}"
    if answer.method == "HEAD" or answer.status in (204, 304):
        return None
    content_type = answer.headers.get("content-type", "")
    if 200 <= answer.status < 300 and content_type.startswith("text/event-stream"):
        return text
    assert content_type.startswith("application/json"), (answer.status, content_type, text[:300])
    body = json.loads(answer.body)
    if answer.status >= 400:
        assert isinstance(body, dict) and set(body) == {"error"}, text[:300]
        error = body["error"]
        assert isinstance(error, dict) and set(error) == ENVELOPE_KEYS, text[:300]
        assert isinstance(error["message"], str) and error["message"], text[:300]
        assert isinstance(error["type"], str) and error["type"], text[:300]
        assert error["param"] is None or isinstance(error["param"], str), text[:300]
        assert error["code"] is None or isinstance(error["code"], str), text[:300]
    return body


def check_completion(body: Any, request: dict[str, Any]) -> None:
    """A non-streaming 200 is a chat.completion carrying the echo provider's answer."""
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    content = choice["message"]["content"]
    expected = expected_echo(request)
    assert expected.startswith(content), (content[:100], expected[:100])
    if choice["finish_reason"] == "stop":
        assert content == expected
    else:
        assert choice["finish_reason"] == "length"
    assert body["x_rec_llm"]["provider"] == "echo"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def check_stream(text: str, request: dict[str, Any]) -> None:
    """A streaming 200 is SSE: JSON chunks adding up to the echo answer, then ``[DONE]``."""
    events = [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", text[-300:]
    chunks = [json.loads(event) for event in events[:-1]]
    assert all("error" not in chunk for chunk in chunks), text[-300:]
    content = "".join(  # the first choice's (echo answers every one of `n` alike)
        choice["delta"].get("content") or ""
        for chunk in chunks
        for choice in chunk.get("choices", [])
        if choice.get("index", 0) == 0
    )
    expected = expected_echo(request)
    assert expected.startswith(content)
    wants_usage = bool((request.get("stream_options") or {}).get("include_usage"))
    assert any(chunk.get("usage") for chunk in chunks) == wants_usage


# -- a raw ASGI driver ---------------------------------------------------------------------------------


async def call_asgi(
    app: Any,
    method: str,
    path: str,
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    body_chunks: list[bytes] | None = None,
    query: bytes = b"",
    root_path: str = "",
    disconnect_early: bool = False,
) -> Answer:
    """Call ``app`` with exactly this scope; check the ASGI messages it sends; bound it in time.

    ``disconnect_early``: the client goes away instead of sending the (rest of the) body.
    """
    chunks = list(body_chunks if body_chunks is not None else [b""])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "root_path": root_path,
        "query_string": query,
        "headers": list(headers or []),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    done = asyncio.Event()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            if disconnect_early and not chunks:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        assert not done.is_set(), f"message after the response ended: {message['type']}"
        if message["type"] == "http.response.start":
            assert not sent, "a second http.response.start"
            assert 100 <= message["status"] <= 599
            for name, value in message.get("headers", []):
                assert isinstance(name, bytes) and isinstance(value, bytes)
                assert b"\n" not in value and b"\r" not in value, f"header injection: {name!r}: {value!r}"
        else:
            assert message["type"] == "http.response.body", message["type"]
            assert sent, "a body before http.response.start"
            if not message.get("more_body", False):
                done.set()
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), TIMEOUT)
    if disconnect_early and not sent:
        return Answer(status=499, headers={}, body=b"", method=method)
    assert sent, "the app returned without responding"
    assert done.is_set(), "the app returned without finishing its response"
    start = sent[0]
    parts = [message.get("body", b"") for message in sent[1:]]
    response_headers: dict[str, str] = {}
    for raw_name, raw_value in start.get("headers", []):
        response_headers[raw_name.decode("latin-1").lower()] = raw_value.decode("latin-1")
    return Answer(start["status"], response_headers, b"".join(parts), method=method, chunks=parts)


# -- what a chat body must get --------------------------------------------------------------------------


def check_chat_outcome(answer: Answer, body: bytes, *, limit: int, request: Any = None) -> None:
    """The answer to ``POST /v1/chat/completions`` with ``body`` (auth already satisfied).

    Over the size limit: 413. Not JSON to Python's strict parser: 400 ``invalid_json``. JSON with
    a NaN or an infinity anywhere: 400. Not an object: 400. Otherwise a 200 with a valid completion
    or stream, or a 400/404 in the envelope. ``request``: a request known to be valid, whose 200
    must carry the echo provider's exact answer.
    """
    parsed = check_response(answer)
    if len(body) > limit:
        assert answer.status == 413, (answer.status, answer.text[:200])
        return
    view = python_view(body)
    if view is _INVALID:
        assert answer.status == 400, (answer.status, body[:200], answer.text[:200])
        assert parsed["error"]["code"] == "invalid_json", answer.text[:300]
        return
    if has_non_finite(view):
        assert answer.status == 400, ("a non-finite number was accepted", body[:300], answer.text[:200])
        return
    if not isinstance(view, dict):
        assert answer.status == 400, (answer.status, body[:200])
        return
    if request is not None:
        assert answer.status == 200, answer.text[:500]
        if request.get("stream"):
            check_stream(parsed, request)
        else:
            check_completion(parsed, request)
        return
    assert answer.status in (200, 400, 404), (answer.status, answer.text[:300])
    if answer.status >= 400:
        assert parsed["error"]["type"] == "invalid_request_error", answer.text[:300]
    elif isinstance(parsed, str):
        events = [line[6:] for line in parsed.split("\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]", parsed[-300:]
        for event in events[:-1]:
            assert "error" not in json.loads(event), event
    else:
        assert parsed["object"] == "chat.completion", answer.text[:300]
        assert isinstance(parsed["choices"][0]["message"]["content"], str)


@st.composite
def requests_with_numbers(draw: st.DrawFn) -> Any:
    """A valid request with an odd or non-finite number added in any object, at any depth."""
    request: Any = json.loads(json.dumps(draw(chat_requests)))
    objects = [path for path in _locations(request) if isinstance(_get(request, path), dict)]
    target = _get(request, draw(st.sampled_from(objects)))
    number = draw(st.sampled_from(NON_FINITE + ODD_NUMBERS))
    wrapper = draw(st.sampled_from(["bare", "list", "dict"]))
    value = number if wrapper == "bare" else [1, number] if wrapper == "list" else {"k": number}
    target[draw(st.sampled_from(["x_number", "temperature", "max_tokens", "seed", "parameters"]))] = value
    return request
