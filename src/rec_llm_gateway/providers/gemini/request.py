"""OpenAI request parameters -> Gemini ``generationConfig``, ``tools`` and ``toolConfig``.

The rule for parameters (one rule, applied to every parameter):

- **mapped** when Gemini has an equivalent (``temperature`` -> ``generationConfig.temperature``, ...);
- **dropped with a DEBUG log** when the parameter only concerns bookkeeping or delivery and cannot
  change the answer the client reads (``user``, ``store``, ``metadata``, ``service_tier``,
  ``prediction``, ``stream_options``, any parameter this module has never heard of);
- **refused with a 400** (``code: unsupported_parameter``, ``param`` naming it) when honouring it is
  part of the answer the client asked for and Gemini cannot do it (``logit_bias``, audio output,
  the legacy ``functions``, tools that are not functions, ...): dropping those would hand back an
  answer the client did not ask for without telling it.

``parallel_tool_calls: false`` has no Gemini switch; the gateway enforces it on the answer instead
(only the first function call of a candidate is returned), so it is honoured, not dropped.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final, Literal

from ...errors import InvalidRequestError
from ...schema import ChatCompletionRequest
from .messages import translate_messages
from .schema import openapi_schema

__all__ = ["SchemaMode", "build_body", "generation_config", "tool_config", "unsupported"]

logger = logging.getLogger("rec_llm_gateway.providers.gemini")

SchemaMode = Literal["json_schema", "openapi"]

# Extra (non-schema) request fields the translation reads; everything else unknown is dropped.
MAPPED_EXTRAS: Final = frozenset(
    {"top_k", "reasoning_effort", "safety_settings", "thinking_config", "cached_content"}
)
# Extra fields whose effect the client would read in the answer and Gemini cannot provide.
_REFUSED_EXTRAS: Final = ("logit_bias", "audio", "functions", "function_call", "web_search_options")

# reasoning_effort -> thinkingBudget for Gemini 2.x (the budgets Google's own OpenAI layer uses;
# 512 for "minimal" is the smallest budget every 2.5 model accepts).
_THINKING_BUDGETS: Final = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
_EFFORTS: Final = frozenset({*_THINKING_BUDGETS, "xhigh"})
_GENERATION = re.compile(r"gemini-(\d+)")


def build_body(
    request: ChatCompletionRequest,
    model: str,
    *,
    schema_mode: SchemaMode = "json_schema",
    safety_settings: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``generateContent`` body for ``request`` (the same body serves the stream endpoint)."""
    unsupported(request)
    system, contents = translate_messages(request)
    if not contents:
        raise InvalidRequestError(
            "Gemini needs at least one user or assistant message besides the system messages.",
            param="messages",
        )
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools, config = tool_config(request, schema_mode)
    if tools:
        body["tools"] = tools
    if config:
        body["toolConfig"] = config
    generation = generation_config(request, model, schema_mode)
    if generation:
        body["generationConfig"] = generation
    extra = request.model_extra or {}
    safety = extra.get("safety_settings", safety_settings)
    if safety:
        body["safetySettings"] = safety
    if isinstance(extra.get("cached_content"), str):
        body["cachedContent"] = extra["cached_content"]
    return body


def _refuse(param: str, why: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"'{param}' is not supported by Gemini: {why}", param=param, code="unsupported_parameter"
    )


def unsupported(request: ChatCompletionRequest) -> None:
    """Raise for parameters whose meaning would be lost; log the ones that are dropped."""
    extra = request.model_extra or {}
    for name in _REFUSED_EXTRAS:
        if extra.get(name):
            raise _refuse(name, "there is no equivalent, and dropping it would change the answer")
    modalities = extra.get("modalities")
    if isinstance(modalities, list) and any(item != "text" for item in modalities):
        raise _refuse("modalities", "only text output is available through chat completions")
    if logger.isEnabledFor(logging.DEBUG):
        dropped = [name for name in extra if name not in MAPPED_EXTRAS and name not in _REFUSED_EXTRAS]
        if request.user is not None:
            dropped.append("user")
        if dropped:
            logger.debug("gemini: dropping parameters with no equivalent: %s", ", ".join(sorted(dropped)))


def generation_config(request: ChatCompletionRequest, model: str, schema_mode: SchemaMode) -> dict[str, Any]:
    """``generationConfig`` for ``request`` (empty when nothing is set)."""
    extra = request.model_extra or {}
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if extra.get("top_k") is not None:
        config["topK"] = extra["top_k"]
    max_tokens = request.max_completion_tokens
    if max_tokens is None:
        max_tokens = request.max_tokens
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    if request.stop:
        config["stopSequences"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    if request.n is not None and request.n != 1:
        config["candidateCount"] = request.n
    if request.seed is not None:
        config["seed"] = request.seed
    if request.presence_penalty is not None:
        config["presencePenalty"] = request.presence_penalty
    if request.frequency_penalty is not None:
        config["frequencyPenalty"] = request.frequency_penalty
    if request.logprobs:
        config["responseLogprobs"] = True
        if request.top_logprobs:
            config["logprobs"] = request.top_logprobs
    if request.response_format is not None:
        config.update(_response_format(request.response_format, schema_mode))
    thinking = _thinking(extra.get("reasoning_effort"), model)
    if isinstance(extra.get("thinking_config"), dict):
        thinking.update(extra["thinking_config"])  # the native escape hatch wins
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _response_format(response_format: dict[str, Any], schema_mode: SchemaMode) -> dict[str, Any]:
    kind = response_format.get("type")
    if kind in (None, "text"):
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if isinstance(schema, dict):
            if schema_mode == "openapi":
                config["responseSchema"] = openapi_schema(schema)
            else:
                config["responseJsonSchema"] = schema
        return config
    raise InvalidRequestError(
        f"Invalid value for 'response_format.type': {kind!r}; expected text, json_object or json_schema.",
        param="response_format.type",
        code="invalid_value",
    )


def _thinking(effort: Any, model: str) -> dict[str, Any]:
    if effort is None:
        return {}
    if not isinstance(effort, str) or effort not in _EFFORTS:
        raise InvalidRequestError(
            f"Invalid value for 'reasoning_effort': {effort!r}.",
            param="reasoning_effort",
            code="invalid_value",
        )
    match = _GENERATION.search(model)
    if match and int(match.group(1)) >= 3:
        # Gemini 3 thinks in levels and cannot switch thinking off; which levels a model accepts
        # differs by model, so the value is passed on and the upstream says when it is not accepted.
        return {"thinkingLevel": {"none": "minimal", "xhigh": "high"}.get(effort, effort)}
    return {"thinkingBudget": _THINKING_BUDGETS.get(effort, _THINKING_BUDGETS["high"])}


def tool_config(
    request: ChatCompletionRequest, schema_mode: SchemaMode
) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None]:
    """``tools`` (function declarations) and ``toolConfig`` for ``request``."""
    if not request.tools:
        return None, None
    declarations: list[dict[str, Any]] = []
    for position, tool in enumerate(request.tools):
        if tool.type != "function" or tool.function is None:
            raise _refuse(f"tools[{position}]", f"tool type {tool.type!r}; only function tools are available")
        function = tool.function
        declaration: dict[str, Any] = {"name": function.name}
        if function.description:
            declaration["description"] = function.description
        if function.parameters is not None:
            if schema_mode == "openapi":
                declaration["parameters"] = openapi_schema(function.parameters)
            else:
                declaration["parametersJsonSchema"] = function.parameters
        declarations.append(declaration)
    choice = request.tool_choice
    mode: str | None = None
    names: list[str] | None = None
    if choice in ("auto", "none", "required"):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]
    elif isinstance(choice, dict) and choice.get("type") == "function":
        chosen = choice.get("function")
        name = chosen.get("name") if isinstance(chosen, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(
                "Missing required parameter: 'tool_choice.function.name'.", param="tool_choice.function.name"
            )
        mode, names = "ANY", [name]
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools")
        if not isinstance(allowed, dict):
            allowed = {}
        listed = allowed.get("tools")
        if not isinstance(listed, list) or not all(isinstance(item, dict) for item in listed):
            raise InvalidRequestError(
                "'tool_choice.allowed_tools.tools' must be a list of tools.",
                param="tool_choice.allowed_tools.tools",
            )
        names = [_tool_name(item) for item in listed]
        if allowed.get("mode") == "required":
            mode = "ANY"
        else:
            # AUTO cannot take allowedFunctionNames; offering only the allowed functions means the same.
            declarations = [item for item in declarations if item["name"] in names]
            mode, names = "AUTO", None
    elif choice is not None:
        raise InvalidRequestError(
            f"Invalid value for 'tool_choice': {choice!r}.", param="tool_choice", code="invalid_value"
        )
    config: dict[str, Any] | None = None
    if mode is not None:
        calling: dict[str, Any] = {"mode": mode}
        if names:
            calling["allowedFunctionNames"] = names
        config = {"functionCallingConfig": calling}
    return [{"functionDeclarations": declarations}], config


def _tool_name(item: dict[str, Any]) -> str:
    function = item.get("function")
    name = function.get("name") if isinstance(function, dict) else item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(
            "Every tool in 'tool_choice.allowed_tools.tools' needs a function name.",
            param="tool_choice.allowed_tools.tools",
        )
    return name
