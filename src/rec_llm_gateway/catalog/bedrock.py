"""AWS Bedrock models served through Converse (figures from the AWS model cards and the vendors' pages).

Many current models can only be invoked on demand through a cross-region inference profile, whose
id adds a geography prefix (``us.anthropic.claude-sonnet-4-5-20250929-v1:0``). Those models are
listed under their base id and under the ``us.``/``eu.``/``apac.``/``global.`` profile ids, so a
lookup finds either; ``invocable_ids(region)`` picks the ids a provider in that region can call.
"""

from __future__ import annotations

from . import ModelInfo

_GEOGRAPHIES = ("us", "eu", "apac", "global")

# (id, context window, max output, options); "profile": invoked through an inference profile.
_BASE: tuple[tuple[str, int, int, dict[str, bool]], ...] = (
    # Anthropic Claude
    (
        "anthropic.claude-opus-4-6-v1",
        1_000_000,
        128_000,
        {"vision": True, "reasoning": True, "profile": True},
    ),
    ("anthropic.claude-sonnet-4-6", 1_000_000, 64_000, {"vision": True, "reasoning": True, "profile": True}),
    (
        "anthropic.claude-opus-4-5-20251101-v1:0",
        200_000,
        64_000,
        {"vision": True, "reasoning": True, "profile": True},
    ),
    (
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        200_000,
        64_000,
        {"vision": True, "reasoning": True, "profile": True},
    ),
    (
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        200_000,
        64_000,
        {"vision": True, "reasoning": True, "profile": True},
    ),
    (
        "anthropic.claude-opus-4-1-20250805-v1:0",
        200_000,
        32_000,
        {"vision": True, "reasoning": True, "profile": True},
    ),
    (
        "anthropic.claude-opus-4-20250514-v1:0",
        200_000,
        32_000,
        {"vision": True, "reasoning": True, "profile": True},
    ),
    (
        "anthropic.claude-sonnet-4-20250514-v1:0",
        200_000,
        64_000,
        {"vision": True, "reasoning": True, "profile": True},
    ),
    (
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
        200_000,
        64_000,
        {"vision": True, "reasoning": True, "profile": True},
    ),
    ("anthropic.claude-3-5-haiku-20241022-v1:0", 200_000, 8_192, {"profile": True}),
    ("anthropic.claude-3-haiku-20240307-v1:0", 200_000, 4_096, {"vision": True}),
    # Amazon Nova
    ("amazon.nova-premier-v1:0", 1_000_000, 32_000, {"vision": True, "profile": True}),
    ("amazon.nova-pro-v1:0", 300_000, 5_000, {"vision": True}),
    ("amazon.nova-lite-v1:0", 300_000, 5_000, {"vision": True}),
    ("amazon.nova-micro-v1:0", 128_000, 5_000, {}),
    # Meta Llama
    ("meta.llama4-maverick-17b-instruct-v1:0", 1_000_000, 8_192, {"vision": True, "profile": True}),
    ("meta.llama4-scout-17b-instruct-v1:0", 3_500_000, 8_192, {"vision": True, "profile": True}),
    ("meta.llama3-3-70b-instruct-v1:0", 128_000, 2_048, {"profile": True}),
    ("meta.llama3-2-90b-instruct-v1:0", 128_000, 2_048, {"vision": True, "profile": True}),
    ("meta.llama3-2-11b-instruct-v1:0", 128_000, 2_048, {"vision": True, "profile": True}),
    ("meta.llama3-2-3b-instruct-v1:0", 128_000, 2_048, {"profile": True}),
    ("meta.llama3-2-1b-instruct-v1:0", 128_000, 2_048, {"profile": True}),
    ("meta.llama3-1-70b-instruct-v1:0", 128_000, 2_048, {"profile": True}),
    ("meta.llama3-1-8b-instruct-v1:0", 128_000, 2_048, {"profile": True}),
    # Mistral AI
    ("mistral.pixtral-large-2502-v1:0", 128_000, 8_192, {"vision": True, "profile": True}),
    ("mistral.mistral-large-2407-v1:0", 128_000, 8_192, {}),
    ("mistral.mistral-large-2402-v1:0", 32_000, 8_192, {}),
    ("mistral.mistral-small-2402-v1:0", 32_000, 8_192, {}),
    ("mistral.mixtral-8x7b-instruct-v0:1", 32_000, 4_096, {"no_tools": True}),
    ("mistral.mistral-7b-instruct-v0:2", 32_000, 8_192, {"no_tools": True}),
    # Cohere, AI21, DeepSeek
    ("cohere.command-r-plus-v1:0", 128_000, 4_096, {}),
    ("cohere.command-r-v1:0", 128_000, 4_096, {}),
    ("ai21.jamba-1-5-large-v1:0", 256_000, 4_096, {}),
    ("ai21.jamba-1-5-mini-v1:0", 256_000, 4_096, {}),
    ("deepseek.r1-v1:0", 128_000, 32_768, {"reasoning": True, "no_tools": True, "profile": True}),
)

PROFILE_ONLY = frozenset(model_id for model_id, _, _, options in _BASE if options.get("profile"))
"""Base ids that are invoked on demand through a geography-prefixed inference profile."""


def _info(model_id: str, context: int, output: int, options: dict[str, bool]) -> ModelInfo:
    return ModelInfo(
        model_id,
        "bedrock",
        context,
        output,
        tools=not options.get("no_tools"),
        vision=options.get("vision", False),
        json=not options.get("no_tools"),  # JSON output is a forced tool call on Bedrock
        reasoning=options.get("reasoning", False),
    )


MODELS = tuple(_info(*entry) for entry in _BASE) + tuple(
    _info(f"{geography}.{model_id}", context, output, options)
    for model_id, context, output, options in _BASE
    if options.get("profile")
    for geography in _GEOGRAPHIES
)


def geography(region: str) -> str | None:
    """The inference-profile prefix for a region (``us-east-1`` -> ``us``)."""
    if region.startswith("us-gov-"):
        return "us-gov"
    if region.startswith(("us-", "ca-")):
        return "us"
    if region.startswith("eu-"):
        return "eu"
    if region.startswith("ap-"):
        return "apac"
    return None


def invocable_ids(region: str) -> list[str]:
    """The catalogued models as a provider in ``region`` calls them (profile ids where needed)."""
    prefix = geography(region) or "global"
    return [f"{prefix}.{model_id}" if model_id in PROFILE_ONLY else model_id for model_id, _, _, _ in _BASE]
