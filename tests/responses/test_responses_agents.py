"""The OpenAI Agents SDK runs an agent with one function tool through the gateway's ``/v1/responses``:
the fake upstream calls the tool, the SDK runs it and sends the result back, the upstream answers."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from ..anthropic_fake import API_KEY as ANTHROPIC_KEY
from ..anthropic_fake import anthropic_upstream
from ..responses_fake import API_KEY as OPENAI_KEY
from ..responses_fake import responses_upstream
from ..support import FakeUpstream, gateway_server, serve_fake

agents = pytest.importorskip("agents")

MODELS = {"anthropic": "anthropic:claude-sonnet-4-5", "openai": "openai:gpt-4.1"}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeUpstream]]:
    with serve_fake(anthropic_upstream) as anthropic, serve_fake(responses_upstream) as native:
        yield {"anthropic": anthropic, "openai": native}


@pytest.fixture(scope="module")
def gateway_url(fakes: dict[str, FakeUpstream]) -> Iterator[str]:
    config = {
        "providers": {
            "anthropic": {"api_key": ANTHROPIC_KEY, "base_url": fakes["anthropic"].url},
            "openai": {"api_key": OPENAI_KEY, "base_url": f"{fakes['openai'].url}/v1"},
        }
    }
    with gateway_server(config) as (url, _):
        yield url


@pytest.fixture(autouse=True)
def _no_tracing_export() -> None:
    agents.set_tracing_disabled(True)  # the SDK would send traces to OpenAI


def weather_agent(gateway_url: str, model: str, calls: list[str]) -> object:
    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather for a city."""
        calls.append(city)
        return f"sunny in {city}"

    client = openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="anything", max_retries=0)
    return agents.Agent(
        name="weather",
        instructions="Answer with the weather tool.",
        tools=[get_weather],
        model=agents.OpenAIResponsesModel(model=model, openai_client=client),
    )


@pytest.mark.parametrize("upstream", list(MODELS))
async def test_agent_with_a_function_tool(
    gateway_url: str, fakes: dict[str, FakeUpstream], upstream: str
) -> None:
    calls: list[str] = []
    agent = weather_agent(gateway_url, MODELS[upstream], calls)
    result = await agents.Runner.run(agent, "What is the weather in Paris?")
    assert calls == ["Paris"]
    assert "sunny in Paris" in result.final_output
    # Two model calls went upstream: the one that asked for the tool and the one that answered.
    assert len(fakes[upstream].requests) >= 2


async def test_agent_streamed_with_previous_response_id(gateway_url: str) -> None:
    calls: list[str] = []
    agent = weather_agent(gateway_url, MODELS["anthropic"], calls)
    first = await agents.Runner.run(agent, "What is the weather in Paris?")
    # The next turn names the last response instead of resending the conversation.
    streamed = agents.Runner.run_streamed(
        agent, "And what is the weather in Rome?", previous_response_id=first.last_response_id
    )
    kinds = [event.type async for event in streamed.stream_events()]
    assert "raw_response_event" in kinds
    assert calls == ["Paris", "Rome"]
    assert "sunny in Rome" in streamed.final_output
