"""A client that goes away stops the generation (seen in the engine's own token counter)."""

from __future__ import annotations

import time

import httpx
from openai import OpenAI

from tests.support import MODEL, AicyProcess

LIMIT = 120  # tokens: long enough to outlast a 0.3 s client timeout, short enough for a loaded machine
# The schema asks for more numbers than LIMIT tokens can hold, so the reply can only end at the limit.
NUMBERS = {
    "type": "object",
    "properties": {"n": {"type": "array", "items": {"type": "integer"}, "minItems": LIMIT}},
    "required": ["n"],
}
LONG = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "List numbers."}],
    "response_format": {"type": "json_schema", "json_schema": {"name": "numbers", "schema": NUMBERS}},
    "max_tokens": LIMIT,
}


def _idle_engine(aicy: AicyProcess) -> dict:
    for _ in range(1200):
        stats = aicy.health()["engine"]
        if stats["active_jobs"] == 0:
            return dict(stats)
        time.sleep(0.1)
    raise AssertionError("the engine never went idle")


def _reference_runs_to_the_limit(client: OpenAI) -> None:
    patient = client.with_options(timeout=600)  # however slow the machine is today
    reply = patient.chat.completions.create(**LONG)  # type: ignore[call-overload]
    assert reply.choices[0].finish_reason == "length", "the prompt must be long enough to need every token"


def test_stream_disconnect_stops_generation(aicy: AicyProcess, api_key: str, client: OpenAI) -> None:
    _reference_runs_to_the_limit(client)
    before = _idle_engine(aicy)
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.stream(
        "POST",
        f"{aicy.base_url}/chat/completions",
        json={**LONG, "stream": True},
        headers=headers,
        timeout=60,
    ) as reply:
        seen = 0
        for line in reply.iter_lines():
            seen += line.startswith("data:")
            if seen >= 5:
                break
    after = _idle_engine(aicy)
    assert after["finished_jobs"] == before["finished_jobs"] + 1
    assert after["generated_tokens"] - before["generated_tokens"] < LIMIT


def test_non_stream_disconnect_stops_generation(aicy: AicyProcess, api_key: str, client: OpenAI) -> None:
    _reference_runs_to_the_limit(client)
    before = _idle_engine(aicy)
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        httpx.post(f"{aicy.base_url}/chat/completions", json=LONG, headers=headers, timeout=0.3)
    except httpx.ReadTimeout:
        pass
    else:
        raise AssertionError("the reply came back before the client gave up; raise LIMIT")
    after = _idle_engine(aicy)
    assert after["finished_jobs"] == before["finished_jobs"] + 1
    assert after["generated_tokens"] - before["generated_tokens"] < LIMIT
