"""What the generation owner promises, through a real server: aicy's own response ids whatever the upstream
sends, and a served model whose channels are all out of rotation is a retryable 503, not a 404."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.fakes.fault_upstream import FaultUpstream
from tests.support import AicyProcess


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("owner").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: FaultUpstream) -> Iterator[AicyProcess]:
    proc = AicyProcess(
        Path(tmp_path_factory.mktemp("owner")),
        extra_env={"AICY_ENGINE_ENABLED": "false", "AICY_BREAKER_COOLDOWN_SECONDS": "600"},
    )
    for model in ("g-resp", "g-chat"):
        proc.cli("models", "set", f'{{"id": "{model}", "context_window": 1000, "max_output_tokens": 100}}')
    base = ("channels", "add", "--base-url", upstream.base_url)
    proc.cli(*base, "--name", "resp", "--wire", "responses", "--models", "g-resp")
    proc.cli(*base, "--name", "chat", "--wire", "chat", "--models", "g-chat")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def client(server: AicyProcess) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=server.new_key("owner"), max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_repeats_its_ids_gets_aicys_own(
    server: AicyProcess, client: OpenAI, stream: bool
) -> None:
    """The fault upstream answers every request with the id ``resp_fault1``."""
    answers = []
    for _ in range(2):
        if stream:
            events = list(client.responses.create(model="g-resp", input="hi", stream=True))
            ids = {e.response.id for e in events if hasattr(e, "response")}
            assert len(ids) == 1, "one response id throughout the stream"
            answers.append(events[-1].response)
        else:
            answers.append(client.responses.create(model="g-resp", input="hi"))
    first, second = answers
    assert first.id != second.id and "resp_fault1" not in (first.id, second.id)
    for answer in answers:
        assert client.responses.retrieve(answer.id).output_text == "Hello from the fault upstream."
    with sqlite3.connect(server.data_dir / "aicy.db") as db:  # the upstream's id is kept beside aicy's
        kept = {
            row[0]
            for row in db.execute(
                "SELECT upstream_id FROM responses WHERE id IN (?, ?)", (first.id, second.id)
            )
        }
    assert kept == {"resp_fault1"}
    follow = client.responses.create(model="g-resp", input="again", previous_response_id=second.id)
    assert follow.previous_response_id == second.id


def test_channels_out_of_rotation_give_a_retryable_503(
    server: AicyProcess, client: OpenAI, upstream: FaultUpstream
) -> None:
    upstream.queue("401")  # one refused key takes the only channel out of rotation (cooldown 600 s)
    with pytest.raises(openai.InternalServerError) as first:
        client.chat.completions.create(model="g-chat", messages=[{"role": "user", "content": "x"}])
    assert first.value.code == "upstream_unavailable"
    reply = httpx.post(
        f"{server.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {client.api_key}"},
        json={"model": "g-chat", "messages": [{"role": "user", "content": "x"}]},
        timeout=30,
    )
    assert reply.status_code == 503 and reply.headers["retry-after"]
    assert reply.json()["error"]["code"] == "model_unavailable"
    missing = httpx.post(
        f"{server.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {client.api_key}"},
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
        timeout=30,
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


def test_a_trailing_slash_is_an_openai_shaped_error_not_a_redirect(
    server: AicyProcess, client: OpenAI
) -> None:
    reply = httpx.delete(
        f"{server.base_url}/responses/", headers={"Authorization": f"Bearer {client.api_key}"}, timeout=30
    )
    assert reply.status_code in (404, 405)
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
