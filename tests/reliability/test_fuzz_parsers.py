"""Fuzzing the wire parsers: whatever bytes a server sends, callers see only `ModelError`s.

Malformed and truncated JSON, SSE and NDJSON, random bytes, huge fields and wrong types in
usage fields go through the same functions the adapters use. Each must either return a
well-typed value or raise a `ModelError` child — never another exception type, never hang.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlm_code.core.exceptions import ModelError
from rlm_code.models.adapters import ollama, openai_compatible
from rlm_code.models.adapters._lines import SSEEvent, iter_lines, iter_sse, loads
from rlm_code.models.adapters.errors import error_detail, error_for_status, parse_retry_after
from rlm_code.models.types import StreamEnd, TextDelta, UsageReport

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=50)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

# Shapes close to the real ones, with wrong types sprinkled in: the likeliest real breakage.
usage_like = st.fixed_dictionaries(
    {},
    optional={"prompt_tokens": json_values, "completion_tokens": json_values,
              "total_tokens": json_values},
)  # fmt: skip
completion_like = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "message": st.one_of(
                            json_values, st.fixed_dictionaries({"content": json_values})
                        ),
                        "delta": st.one_of(
                            json_values, st.fixed_dictionaries({"content": json_values})
                        ),
                        "finish_reason": json_values,
                    },
                ),
                max_size=2,
            ),
        ),
        "usage": st.one_of(json_values, usage_like),
        "error": json_values,
    },
)
ollama_like = st.fixed_dictionaries(
    {},
    optional={
        "message": st.one_of(json_values, st.fixed_dictionaries({"content": json_values})),
        "done": json_values,
        "prompt_eval_count": json_values,
        "eval_count": json_values,
        "done_reason": json_values,
        "error": json_values,
        "models": json_values,
    },
)


def only_model_errors(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except ModelError:
        return None


@FUZZ
@given(st.one_of(completion_like, json_values))
def test_openai_completion_parser(data: object) -> None:
    result = only_model_errors(openai_compatible.parse_completion, data, "fuzz")
    if result is not None:
        assert isinstance(result.text, str)
        assert result.finish_reason is None or isinstance(result.finish_reason, str)
        assert_counts(result.usage)


def assert_counts(usage: object) -> None:
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens"):
        count = getattr(usage, name)
        assert count is None or (isinstance(count, int) and count >= 0)


def assert_events(events: object) -> None:
    if events is None:
        return
    assert isinstance(events, list)
    for event in events:
        assert isinstance(event, TextDelta | UsageReport | StreamEnd)
        if isinstance(event, TextDelta):
            assert isinstance(event.text, str) and event.text
        if isinstance(event, UsageReport):
            assert_counts(event.usage)


@FUZZ
@given(st.one_of(completion_like.map(json.dumps).map(str.encode), st.binary(max_size=200)))
def test_openai_stream_line_parser(payload: bytes) -> None:
    parser = openai_compatible.ChatStreamParser("fuzz")
    for line in (b"data: " + payload, b"data:" + payload, payload):
        assert_events(only_model_errors(parser.feed, line + b"\n\n"))
        assert_events(only_model_errors(parser.event, SSEEvent(payload)))


@FUZZ
@given(st.one_of(ollama_like, json_values))
def test_ollama_message_parser(data: object) -> None:
    assert_events(only_model_errors(ollama.parse_message, data, "fuzz"))
    names = only_model_errors(ollama.model_names, data, "fuzz")
    assert names is None or all(isinstance(n, str) for n in names)


@FUZZ
@given(st.binary(max_size=300))
def test_loads_rejects_bad_bytes_with_a_model_error(payload: bytes) -> None:
    only_model_errors(loads, payload, "fuzz")


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=12))
def test_line_splitting_is_lossless(chunks: list[bytes]) -> None:
    joined = b"".join(chunks)
    lines = list(iter_lines(chunks))
    *terminated, tail = joined.split(b"\n")
    expected = [line[:-1] if line.endswith(b"\r") else line for line in terminated]
    if tail:  # an unterminated last fragment is passed on as it came
        expected.append(tail)
    assert lines == expected


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=12))
def test_sse_decoding_never_fails_on_bytes(chunks: list[bytes]) -> None:
    for event in iter_sse(chunks):
        assert isinstance(event.data, bytes) and isinstance(event.event, str)


@FUZZ
@given(
    st.integers(min_value=400, max_value=599),
    st.one_of(st.binary(max_size=300), json_values.map(json.dumps)),
    st.dictionaries(
        st.sampled_from(["retry-after", "Retry-After", "retry-after-ms"]),
        st.text(max_size=30),
    ),
)
def test_error_mapping_always_gives_a_model_error(status: int, body: object, headers) -> None:  # type: ignore[no-untyped-def]
    error = error_for_status("fuzz", status, body, headers)  # type: ignore[arg-type]
    assert isinstance(error, ModelError)
    assert error.status_code == status
    assert isinstance(error_detail(body), str)  # type: ignore[arg-type]
    wait = parse_retry_after(headers)
    assert wait is None or wait >= 0


def test_huge_fields_are_handled() -> None:
    huge = "x" * 5_000_000
    body = json.dumps({"choices": [{"message": {"content": huge}}], "usage": {"prompt_tokens": 1}})
    result = openai_compatible.parse_completion(loads(body.encode(), "fuzz"), "fuzz")
    assert len(result.text) == 5_000_000 and result.usage.output_tokens is None
    assert len(error_detail(huge)) <= 300
