"""OpenAI through the official `openai` SDK (adapter type "openai", route "sdk").

One `OpenAI` client per connection, and one `AsyncOpenAI` per connection and event loop (the
async client's connection pool belongs to the loop that opened it; reusing it under a later
`asyncio.run` fails with "Event loop is closed"). Both are built with `max_retries=0` (our
`RetryPolicy` retries, the same way for every adapter, and never after a stream has started)
and with redirects off (see `_sdk`).

Requests use OpenAI's current parameter names: `max_completion_tokens` (not the deprecated
`max_tokens`, which reasoning models reject), `stop`, `temperature`, the system prompt as the
first message. Turns with images, tool calls and tool results, `tools`, `tool_choice`,
`response_format` (`json_schema`) and `reasoning_effort` (a token budget becomes the nearest
effort word) are built by `_openai_wire`, the same as for the raw HTTP adapter, and go to
`chat.completions.create(**args)` unchanged. A `temperature` for a model whose profile says
it takes none (the o1, o3, o4 and gpt-5 families) is refused before the request
(`UnsupportedParameterError`; the policy is in `rlm_code.models.profiles`).

Calls go through the SDK's `with_streaming_response` (the SDK still builds, authenticates and
sends the request and maps error statuses), but the body is read and parsed here: so the
call's total deadline is checked between chunks, the body size is capped, and a stream stops
reading at `data: [DONE]` (the connection is closed rather than read to its end: a server
that trickles bytes after the end marker cannot hold the call). The SDK's own `Stream` also
ends quietly when a stream stops without `data: [DONE]`, so a cut stream would pass for a
complete one; here it raises, as the raw adapter does on the same bytes.

The request differs from `openai_compatible`'s, the answer does not: whole bodies and stream
events are parsed by that module's `parse_completion` and `ChatEvents` (tool calls, reasoning
fields and their replay details included; usage buckets too: `prompt_tokens` includes the
cached tokens, `prompt_tokens_details.cached_tokens`, which are subtracted for `input_tokens`
and reported as cache reads; `completion_tokens` includes
`completion_tokens_details.reasoning_tokens`).
"""

from __future__ import annotations

from typing import Any

from rlm_code.models.adapters._lines import loads
from rlm_code.models.adapters._openai_wire import add_features, chat_messages
from rlm_code.models.adapters._stainless import StainlessAdapter
from rlm_code.models.adapters.base import add_sampling
from rlm_code.models.adapters.openai_compatible import ChatEvents, parse_completion, reply_of
from rlm_code.models.profiles import check_parameters
from rlm_code.models.types import ChatRequest, Response, Usage


class OpenAIAdapter(StainlessAdapter):
    """Chat completions on the official SDK; see the module docstring."""

    adapter_type = "openai"
    end_marker = "data: [DONE]"
    sdk_module = "openai"
    sync_client = "OpenAI"
    async_client = "AsyncOpenAI"
    key_env = "OPENAI_API_KEY"

    def _arguments(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        spec = self.endpoint.spec
        profile = self.call_profile()
        check_parameters(request, profile, spec.provider_id)  # temperature on o1/o3/o4/gpt-5
        args: dict[str, Any] = {"model": request.model, "messages": chat_messages(request)}
        add_sampling(args, request.params, "max_completion_tokens", "stop")
        add_features(args, request, spec.provider_id, spec.reasoning_param)
        if stream:
            args["stream"] = True
            if profile.stream_usage == "stream_options":
                args["stream_options"] = {"include_usage": True}
        return args

    def _create(self, client: Any) -> Any:
        return client.chat.completions.with_streaming_response.create

    def _parse(self, data: object) -> tuple[str, Usage, str | None]:
        text, usage, reason, *_ = parse_completion(data, self.endpoint.provider_id)
        return text, usage, reason

    def _reply(self, request: ChatRequest, body: bytes) -> Response:
        """The whole reply, tool calls and reasoning included (the base class's `_parse`
        returns only text, usage and finish reason)."""
        spec = self.endpoint.spec
        data = loads(body, spec.provider_id)
        return reply_of(self, request, parse_completion(data, spec.provider_id, spec.is_local))

    def _stream_parser(self) -> ChatEvents:
        spec = self.endpoint.spec
        return ChatEvents(spec.provider_id, spec.is_local)


__all__ = ["OpenAIAdapter", "parse_completion"]
