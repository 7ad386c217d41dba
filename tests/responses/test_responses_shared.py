"""Two ``rec-llm-gateway serve`` processes sharing a state store (a SQLite file, a Redis server)
continue each other's conversations: a response made on one is read, continued and deleted on the
other. The echo provider counts one input token per word of the whole conversation it was sent, so
``usage.input_tokens`` shows whether the history came along."""

from __future__ import annotations

from pathlib import Path

import httpx

from ..state_support import gateways, write_config


def create(url: str, **body: object) -> dict[str, object]:
    response = httpx.post(f"{url}/v1/responses", json={"model": "echo:m", **body}, timeout=30)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def test_two_processes_continue_each_others_conversations(store_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "gateway.json", store_url)
    with gateways(config, 1, 1) as (first, second):
        turn1 = create(first.url, input="alpha beta")
        assert turn1["usage"]["input_tokens"] == 2  # type: ignore[index]
        turn2 = create(second.url, input="gamma", previous_response_id=turn1["id"])
        # alpha beta (user) + alpha beta (assistant) + gamma: the history crossed processes
        assert turn2["usage"]["input_tokens"] == 5  # type: ignore[index]
        turn3 = create(first.url, input="delta", previous_response_id=turn2["id"], stream=False)
        assert turn3["usage"]["input_tokens"] == 7  # type: ignore[index]
        stored = httpx.get(f"{second.url}/v1/responses/{turn3['id']}", timeout=10)
        assert stored.status_code == 200 and stored.json()["output"] == turn3["output"]
        assert httpx.delete(f"{second.url}/v1/responses/{turn2['id']}", timeout=10).status_code == 200
        gone = httpx.post(
            f"{first.url}/v1/responses",
            json={"model": "echo:m", "input": "x", "previous_response_id": turn2["id"]},
            timeout=30,
        )
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "previous_response_not_found"


def test_a_streamed_turn_is_stored_before_it_ends(store_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "gateway.json", store_url)
    with gateways(config, 1, 1) as (first, second):
        with httpx.stream(
            "POST", f"{first.url}/v1/responses", json={"model": "echo:m", "input": "one two", "stream": True}
        ) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: ") and '"response.completed"' in line:
                    response_id = line.split('"id":"', 1)[1].split('"', 1)[0]
                    # The client has the end of the stream: another process must know the id now.
                    assert (
                        httpx.get(f"{second.url}/v1/responses/{response_id}", timeout=10).status_code == 200
                    )
                    break
            else:
                raise AssertionError("no response.completed event")
