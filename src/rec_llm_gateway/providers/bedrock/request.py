"""An OpenAI chat request -> a Converse request body (pure functions; see docs/providers/bedrock.md).

The parameter rule: a parameter Converse has no equivalent for is **dropped with a debug log** when
dropping it can only change how an answer is sampled or billed (``seed``, penalties, ``user``,
``parallel_tool_calls``, unknown extras); it is a **400** when the client relies on it for the
shape or content of the answer (``n > 1``, ``logprobs``, ``top_logprobs``, ``logit_bias``, audio
output). Model-specific extras (``top_k``, ``reasoning_effort``, and the escape hatch
``additional_model_request_fields``) go to ``additionalModelRequestFields``.

``response_format`` (``json_object`` / ``json_schema``) becomes a forced tool whose input is the
answer (``translate.request.json_tool``, named after the schema, suffixed when a client tool has the
name): the response translators turn that tool call back into ``content`` and ``finish_reason:
"stop"``. ``reasoning_effort`` on Claude maps to the same thinking budgets as on Anthropic.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from ...errors import InvalidRequestError
from ...schema import ChatCompletionRequest
from ...translate import request as shared
from .messages import ImageBlock, convert_messages

__all__ = ["build_converse_body", "json_tool_name", "model_family"]

logger = logging.getLogger("rec_llm_gateway.providers.bedrock")

# Fields of the request model the translator reads; everything else set on a request is dropped.
_HANDLED: Final = frozenset(
    {
        "model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop",
        "max_tokens", "max_completion_tokens", "tools", "tool_choice", "response_format",
        "logprobs", "top_logprobs", "top_k", "reasoning_effort", "additional_model_request_fields",
    }
)  # fmt: skip
# Geography prefixes of cross-region inference profiles (``us.anthropic.claude-...``).
_GEOGRAPHIES: Final = frozenset({"us", "eu", "apac", "global", "us-gov", "jp", "au", "ca", "in"})
_ANSWER_ROOM: Final = 8192
"""Tokens left for Claude's answer beside its thinking budget when the client sets no max_tokens."""


def model_family(model: str) -> str:
    """The vendor part of a Bedrock model id: ``us.anthropic.claude-...`` and ARNs -> ``anthropic``."""
    name = model.rsplit("/", 1)[-1]
    first, dot, rest = name.partition(".")
    if dot and first in _GEOGRAPHIES:
        first = rest.partition(".")[0]
    return first


def json_tool_name(request: ChatCompletionRequest) -> str | None:
    """The name of the forced tool standing in for ``response_format``, if there is one."""
    return shared.json_tool_name(request, schema_name=True)


def build_converse_body(
    request: ChatCompletionRequest, model: str, *, images: Mapping[str, ImageBlock] | None = None
) -> dict[str, Any]:
    """The Converse (and ConverseStream) body for ``request`` sent to ``model``.

    ``images`` maps each http(s) image URL in the request to its already fetched image block.
    """
    _reject_unsupported(request)
    tool_config = _tool_config(request)
    system, messages = convert_messages(
        request.messages, images=images or {}, structured_tools=tool_config is not None
    )
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    inference = _inference_config(request)
    additional = _additional_fields(request, model, inference)
    if inference:
        body["inferenceConfig"] = inference
    if tool_config is not None:
        body["toolConfig"] = tool_config
    if additional:
        body["additionalModelRequestFields"] = additional
    if logger.isEnabledFor(logging.DEBUG):
        dropped = sorted(name for name in request.model_fields_set if name not in _HANDLED)
        dropped += sorted(name for name in (request.model_extra or {}) if name not in _HANDLED)
        if dropped:
            logger.debug("bedrock: dropped parameters with no Converse equivalent: %s", ", ".join(dropped))
    return body


def _unsupported(param: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"'{param}' is not supported by Bedrock: {why}", param=param, code="unsupported_parameter"
    )


def _reject_unsupported(request: ChatCompletionRequest) -> None:
    if request.n is not None and request.n != 1:
        raise _unsupported("n", "Converse returns one choice per request; send n=1 or leave it out.")
    if request.logprobs:
        raise _unsupported("logprobs", "Converse does not return log probabilities.")
    if request.top_logprobs:
        raise _unsupported("top_logprobs", "Converse does not return log probabilities.")
    extra = request.model_extra or {}
    if extra.get("logit_bias"):
        raise _unsupported("logit_bias", "Converse cannot bias tokens.")
    modalities = extra.get("modalities")
    if extra.get("audio") or (isinstance(modalities, list) and "audio" in modalities):
        raise _unsupported("modalities", "Converse does not produce audio.")


def _inference_config(request: ChatCompletionRequest) -> dict[str, Any]:
    inference: dict[str, Any] = {}
    max_tokens = (
        request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    )
    if max_tokens is not None:
        inference["maxTokens"] = max_tokens
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.top_p is not None:
        inference["topP"] = request.top_p
    stop = request.stop
    if stop:
        sequences = [stop] if isinstance(stop, str) else [item for item in stop if item]
        if sequences:
            inference["stopSequences"] = sequences
    return inference


def _additional_fields(
    request: ChatCompletionRequest, model: str, inference: dict[str, Any]
) -> dict[str, Any]:
    extra = request.model_extra or {}
    family = model_family(model)
    fields: dict[str, Any] = {}
    top_k = extra.get("top_k")
    if top_k is not None:
        if family == "amazon":
            fields["inferenceConfig"] = {"topK": top_k}
        elif family == "cohere":
            fields["k"] = top_k
        elif family != "meta":  # Llama has no top-k on Bedrock: dropped
            fields["top_k"] = top_k
    effort = extra.get("reasoning_effort")
    if isinstance(effort, str) and effort != "none":
        _add_reasoning(fields, family, model, effort, inference)
    passthrough = extra.get("additional_model_request_fields")
    if passthrough is not None:
        if not isinstance(passthrough, dict):
            raise InvalidRequestError(
                "'additional_model_request_fields' must be an object.",
                param="additional_model_request_fields",
                code="invalid_type",
            )
        fields.update(passthrough)
    return fields


def _add_reasoning(
    fields: dict[str, Any], family: str, model: str, effort: str, inference: dict[str, Any]
) -> None:
    if family == "anthropic":
        thinking, max_tokens = shared.claude_thinking(
            effort, inference.get("maxTokens"), answer_room=_ANSWER_ROOM
        )
        if max_tokens is not None:
            inference["maxTokens"] = max_tokens
        if thinking is not None:
            fields["thinking"] = thinking
    elif family == "amazon" and "nova-2" in model:
        level = {"minimal": "low", "xhigh": "high"}.get(effort, effort)
        fields["reasoningConfig"] = {"type": "enabled", "maxReasoningEffort": level}
    elif family == "openai":  # gpt-oss takes OpenAI's own parameter
        fields["reasoning_effort"] = effort
    else:
        logger.debug("bedrock: reasoning_effort dropped for %s (no known equivalent)", model)


def _tool_config(request: ChatCompletionRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    tools = (
        []
        if choice == "none"
        else [_tool_spec(tool, index) for index, tool in enumerate(request.tools or ())]
    )
    names = {tool["toolSpec"]["name"] for tool in tools}
    forced: dict[str, Any] | None = None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
        if not isinstance(name, str) or name not in names:
            raise InvalidRequestError(
                "Invalid 'tool_choice': name a function from 'tools' "
                "({'type': 'function', 'function': {'name': ...}}).",
                param="tool_choice",
                code="invalid_value",
            )
        forced = {"tool": {"name": name}}
    elif choice == "required":
        forced = {"any": {}}
    elif choice == "auto":
        forced = {"auto": {}}
    elif choice not in (None, "none"):
        raise InvalidRequestError(
            f"Invalid value for 'tool_choice': {choice!r}.", param="tool_choice", code="invalid_value"
        )
    json_tool = _json_tool(request)
    if json_tool is not None:
        name = json_tool["toolSpec"]["name"]
        # The answer must come through a tool: the named one, any client tool, or the answer tool.
        if forced is None or "tool" not in forced:
            forced = {"any": {}} if tools else {"tool": {"name": name}}
        tools.append(json_tool)
    if not tools:
        return None
    config: dict[str, Any] = {"tools": tools}
    if forced is not None:
        config["toolChoice"] = forced
    return config


def _tool_spec(tool: Any, index: int) -> dict[str, Any]:
    function = tool.function
    if tool.type != "function" or function is None:
        raise InvalidRequestError(
            f"tools[{index}]: only function tools are supported by Bedrock.",
            param=f"tools[{index}].type",
            code="unsupported_value",
        )
    spec: dict[str, Any] = {
        "name": function.name,
        "inputSchema": {"json": function.parameters or {"type": "object", "properties": {}}},
    }
    if function.description:
        spec["description"] = function.description
    if function.strict:
        spec["strict"] = True
    return {"toolSpec": spec}


def _json_tool(request: ChatCompletionRequest) -> dict[str, Any] | None:
    tool = shared.json_tool(request, schema_name=True)
    if tool is None:
        return None
    spec: dict[str, Any] = {
        "name": tool.name,
        "description": tool.description,
        "inputSchema": {"json": tool.schema},
    }
    if tool.strict:
        spec["strict"] = True
    return {"toolSpec": spec}
