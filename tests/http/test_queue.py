"""The admission queue over real HTTP: keep-alives while waiting, padded non-streams, the start deadline,
leaving the queue, fairness and a mixed load. A fault upstream with capacity 1 or 2 forces waiting."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from tests.fakes.fault_upstream import FaultUpstream
from tests.support import AicyProcess

QUEUE_ENV = {
    "AICY_ENGINE_ENABLED": "false",
    "AICY_KEEPALIVE_SECONDS": "0.2",
    "AICY_HEARTBEAT_SECONDS": "0.5",
    "AICY_NONSTREAM_GRACE_SECONDS": "0.4",
    "AICY_QUEUE_DEADLINE_SECONDS": "3",
    "AICY_BREAKER_FAILURES": "1000",
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    server = FaultUpstream("slow").start()
    yield server
    server.stop()


def _queue_server(
    folder: Path, upstream: FaultUpstream, env: dict[str, str], capacities: dict[str, int]
) -> AicyProcess:
    """A server whose channel ``one`` serves model ``q1``, ``two`` serves ``q2``…, each with its capacity."""
    proc = AicyProcess(folder, extra_env=env)
    for number, (channel, capacity) in enumerate(capacities.items(), start=1):
        proc.cli("models", "set", f'{{"id": "q{number}", "context_window": 1000, "max_output_tokens": 100}}')
        base = ("channels", "add", "--name", channel, "--base-url", upstream.base_url)
        proc.cli(*base, "--models", f"q{number}", "--capacity", str(capacity))
    proc.start()
    return proc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: FaultUpstream) -> Iterator[AicyProcess]:
    proc = _queue_server(tmp_path_factory.mktemp("queue"), upstream, QUEUE_ENV, {"one": 1, "two": 2})
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def admin(server: AicyProcess) -> Iterator[httpx.Client]:
    key = server.cli("keys", "create", "--admin").stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=server.root_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
        yield c


def _key(server: AicyProcess, account: str) -> str:
    return server.new_key(account)


def _busy(server: AicyProcess, key: str, upstream: FaultUpstream, seconds: float) -> threading.Thread:
    """Occupy the only slot of q1 for about ``seconds``."""
    upstream.state.delay = seconds
    seen = len(upstream.requests)

    def hold() -> None:
        httpx.post(
            f"{server.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
            json={"model": "q1", "messages": [{"role": "user", "content": "hold"}]},
        )

    thread = threading.Thread(target=hold)
    thread.start()
    for _ in range(250):  # the upstream has the request (and has read the delay), so the slot stays taken
        if len(upstream.requests) > seen and server.health()["queues"]["one"]["in_use"] == 1:
            break
        time.sleep(0.02)
    upstream.state.delay = 0.0
    return thread


def _timed_lines(response: httpx.Response) -> list[tuple[float, str]]:
    start = time.monotonic()
    return [(time.monotonic() - start, line) for line in response.iter_lines()]


def test_queued_chat_stream_gets_keepalive_comments(server: AicyProcess, upstream: FaultUpstream) -> None:
    key = _key(server, "ka-chat")
    holder = _busy(server, key, upstream, 1.5)
    body = {"model": "q1", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["x-accel-buffering"] == "no" and reply.headers["cache-control"] == "no-cache"
        lines = _timed_lines(reply)
    holder.join()
    first_data = next(t for t, line in lines if line.startswith("data:"))
    pings = [t for t, line in lines if line == ": keep-alive" and t < first_data]
    assert len(pings) >= 3
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < 1.0, "comments keep coming at the interval while the request waits"
    assert lines[-2][1] == "data: [DONE]" or lines[-1][1] == "data: [DONE]"


def test_sdk_reads_queued_streams_and_padded_replies(server: AicyProcess, upstream: FaultUpstream) -> None:
    key = _key(server, "ka-sdk")
    client = OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
    holder = _busy(server, key, upstream, 1.2)
    chunks = list(
        client.chat.completions.create(model="q1", messages=[{"role": "user", "content": "x"}], stream=True)
    )
    holder.join()
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from the fault upstream."
    )

    holder = _busy(server, key, upstream, 1.2)
    with client.responses.stream(model="q1", input="x") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    holder.join()
    assert kinds[0] == "response.created"
    assert kinds.count("response.in_progress") >= 2, "heartbeats while waiting"
    assert final.output_text == "Hello from the fault upstream."
    assert client.responses.retrieve(final.id).output_text == final.output_text

    for api in ("chat", "responses"):
        holder = _busy(server, key, upstream, 1.2)
        if api == "chat":
            reply = client.chat.completions.create(model="q1", messages=[{"role": "user", "content": "x"}])
            assert reply.choices[0].message.content == "Hello from the fault upstream."
        else:
            assert (
                client.responses.create(model="q1", input="x").output_text == "Hello from the fault upstream."
            )
        holder.join()


def test_raw_padded_non_stream(server: AicyProcess, upstream: FaultUpstream) -> None:
    key = _key(server, "ka-raw")
    holder = _busy(server, key, upstream, 1.5)
    body = {"model": "q1", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("application/json")
        raw = reply.read()
    holder.join()
    blank_prefix = len(raw) - len(raw.lstrip(b"\n"))
    assert blank_prefix >= 3
    assert raw.lstrip(b"\n").startswith(b'{"id"')


def test_short_waits_keep_their_true_status(server: AicyProcess, upstream: FaultUpstream) -> None:
    key = _key(server, "ka-grace")
    holder = _busy(server, key, upstream, 0.1)
    reply = httpx.post(
        f"{server.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "q1", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    holder.join()
    assert reply.status_code == 200 and not reply.content.startswith(b"\n")
    assert int(reply.headers["x-aicy-queue-ms"]) >= 0


def test_start_deadline_closes_with_a_clear_error_and_charges_nothing(
    server: AicyProcess, upstream: FaultUpstream, admin: httpx.Client
) -> None:
    key = _key(server, "ka-deadline")
    admin.post(
        "/admin/models",
        json={
            "id": "q1",
            "context_window": 1000,
            "max_output_tokens": 100,
            "prices": {"input": 1_000_000, "cached_input": 0, "output": 1_000_000},
        },
    )
    admin.post("/admin/accounts/ka-deadline/topup", json={"amount": 1_000_000})
    holder_key = _key(server, "holder")
    admin.post("/admin/accounts/holder/topup", json={"amount": 1_000_000})
    holder = _busy(server, holder_key, upstream, 8)  # longer than two start deadlines (3 s each)
    body = {"model": "q1", "input": "hi", "stream": True}
    with httpx.stream(
        "POST",
        f"{server.base_url}/responses",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as reply:
        lines = [line for _, line in _timed_lines(reply)]
    failed = [line for line in lines if line.startswith("data:") and "response.failed" in line]
    assert failed and "queue_timeout" in failed[0]
    client = OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
    with pytest.raises(openai.APIError):
        client.with_options(timeout=30).chat.completions.create(
            model="q1", messages=[{"role": "user", "content": "x"}], stream=True
        ).__iter__().__next__()
    holder.join()
    account = admin.get("/admin/accounts/ka-deadline").json()
    assert account["balance"] == 1_000_000 and account["reserved"] == 0
    statuses = [
        line["status"]
        for line in admin.get("/admin/usage/lines", params={"account": "ka-deadline"}).json()["data"]
    ]
    assert "queue_timeout" in statuses
    admin.patch("/admin/models/q1", json={"prices": {"input": 0, "cached_input": 0, "output": 0}})


def test_leaving_the_queue_releases_everything(
    server: AicyProcess, upstream: FaultUpstream, admin: httpx.Client
) -> None:
    key = _key(server, "ka-leave")
    holder = _busy(server, key, upstream, 2)
    body = {"model": "q1", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as reply:
        lines = reply.iter_lines()
        assert next(lines) == ": keep-alive"
        assert server.health()["queues"]["one"]["waiting"] == 1
    for _ in range(50):
        if server.health()["queues"]["one"]["waiting"] == 0:
            break
        time.sleep(0.05)
    assert server.health()["queues"]["one"]["waiting"] == 0
    holder.join()
    account = admin.get("/admin/accounts/ka-leave").json()
    assert account["reserved"] == 0
    statuses = [
        line["status"]
        for line in admin.get("/admin/usage/lines", params={"account": "ka-leave"}).json()["data"]
    ]
    assert "client_closed" in statuses


def test_fairness_one_request_is_not_stuck_behind_another_accounts_twenty(
    server: AicyProcess, upstream: FaultUpstream
) -> None:
    heavy, light = _key(server, "fair-a"), _key(server, "fair-b")
    upstream.requests.clear()
    upstream.state.delay = 0.5  # a slot frees every 0.5 s: B is queued well before the next one

    def send(key: str, text: str) -> None:
        httpx.post(
            f"{server.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
            json={"model": "q1", "messages": [{"role": "user", "content": text}], "stream": True},
        )

    threads = [threading.Thread(target=send, args=(heavy, f"a{i}")) for i in range(20)]
    for thread in threads:
        thread.start()
    for _ in range(200):
        if server.health()["queues"]["one"]["waiting"] >= 19:
            break
        time.sleep(0.02)
    arrived = len(upstream.requests)
    single = threading.Thread(target=send, args=(light, "b0"))
    single.start()
    for thread in [*threads, single]:
        thread.join()
    upstream.state.delay = 0.0
    order = [r["body"]["messages"][0]["content"] for r in upstream.requests]
    assert order.index("b0") <= arrived + 1, "B starts within the next two free slots"


def test_mixed_load_is_answered_fairly(
    server: AicyProcess, upstream: FaultUpstream, admin: httpx.Client
) -> None:
    keys = {f"mix-{n}": _key(server, f"mix-{n}") for n in range(5)}
    upstream.state.delay, upstream.state.chunk_gap = 0.01, 0.0

    async def one(client: httpx.AsyncClient, key: str, number: int) -> int:
        reply = await client.post(
            "/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "q2",
                "messages": [{"role": "user", "content": f"{number}"}],
                "stream": number % 2 == 0,
            },
        )
        return reply.status_code

    async def load() -> list[int]:
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=120, limits=limits) as client:
            jobs = [one(client, keys[f"mix-{n % 5}"], n) for n in range(200)]
            return await asyncio.gather(*jobs)

    statuses = asyncio.run(load())
    upstream.state.delay, upstream.state.chunk_gap = 0.0, 0.01
    assert statuses == [200] * 200
    waits = {}
    for account in keys:
        lines = admin.get("/admin/usage/lines", params={"account": account}).json()["data"]
        assert len(lines) == 40 and {line["status"] for line in lines} == {"completed"}, {
            line["status"] for line in lines
        }
        waits[account] = sum(line["queue_ms"] for line in lines) / len(lines)
    assert max(waits.values()) > 0, "the load did queue"
    assert max(waits.values()) < 2 * max(min(waits.values()), 1), waits


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory, upstream: FaultUpstream) -> Iterator[AicyProcess]:
    """Like ``server`` but with a start deadline no test reaches, so ordering tests do not race the clock."""
    env = {**QUEUE_ENV, "AICY_QUEUE_DEADLINE_SECONDS": "300"}
    proc = _queue_server(tmp_path_factory.mktemp("patient"), upstream, env, {"one": 1})
    yield proc
    proc.stop()


class Holder:
    """Takes the only slot with a stream the upstream answers slowly; ``release`` hangs up, which frees it."""

    def __init__(self, server: AicyProcess, key: str, upstream: FaultUpstream) -> None:
        upstream.state.delay = 60.0
        seen = len(upstream.requests)
        body = orjson.dumps(
            {"model": "q1", "messages": [{"role": "user", "content": "hold"}], "stream": True}
        )
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sock = socket.create_connection(("127.0.0.1", server.port))
        self.sock.sendall(head.encode() + body)
        for _ in range(500):
            if len(upstream.requests) > seen and server.health()["queues"]["one"]["in_use"] == 1:
                break
            time.sleep(0.02)
        upstream.state.delay = 0.0
        assert server.health()["queues"]["one"]["in_use"] == 1

    def release(self) -> None:
        self.sock.close()


def _wait_queued(server: AicyProcess, waiting: int) -> None:
    for _ in range(1500):
        if server.health()["queues"]["one"]["waiting"] >= waiting:
            return
        time.sleep(0.02)
    raise AssertionError(f"{waiting} requests did not join the queue")


def test_requests_join_in_arrival_order_whatever_their_kind(
    patient: AicyProcess, upstream: FaultUpstream
) -> None:
    """Ten non-streams, then ten streams, from one account: served in exactly that order."""
    key = _key(patient, "order")
    upstream.state.chunk_gap = 0.0
    holder = Holder(patient, key, upstream)
    upstream.requests.clear()

    def send(text: str, stream: bool) -> None:
        httpx.post(
            f"{patient.base_url}/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
            json={"model": "q1", "messages": [{"role": "user", "content": text}], "stream": stream},
        )

    labels = [(f"n{i}", False) for i in range(10)] + [(f"s{i}", True) for i in range(10)]
    threads = []
    for number, (text, stream) in enumerate(labels):
        threads.append(threading.Thread(target=send, args=(text, stream)))
        threads[-1].start()
        _wait_queued(patient, number + 1)  # the next one arrives only once this one has its place
    holder.release()
    for thread in threads:
        thread.join()
    upstream.state.chunk_gap = 0.01
    served = [r["body"]["messages"][0]["content"] for r in upstream.requests]
    assert served == [text for text, _ in labels]


def test_a_burst_of_streams_and_non_streams_is_served_in_arrival_order(
    patient: AicyProcess, upstream: FaultUpstream
) -> None:
    """Capacity 1 and 150 + 150 requests arriving together, alternating: the upstream sees both kinds at the
    same rate (a non-stream used to join the queue a turn late, and every stream overtook it)."""
    keys = [_key(patient, f"burst-{n}") for n in range(3)]
    upstream.state.delay, upstream.state.chunk_gap = 0.0, 0.0
    upstream.requests.clear()

    async def one(client: httpx.AsyncClient, number: int) -> int:
        stream = number % 2 == 0
        reply = await client.post(
            "/chat/completions",
            headers={"Authorization": f"Bearer {keys[number % 3]}"},
            json={"model": "q1", "messages": [{"role": "user", "content": f"b{number}"}], "stream": stream},
        )
        return reply.status_code

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=400)
        async with httpx.AsyncClient(base_url=patient.base_url, timeout=300, limits=limits) as client:
            return await asyncio.gather(*(one(client, n) for n in range(300)))

    statuses = asyncio.run(burst())
    upstream.state.chunk_gap = 0.01
    assert statuses == [200] * 300
    order = [r["body"].get("stream") is True for r in upstream.requests]
    assert len(order) == 300
    for share in (0.25, 0.5, 0.75):  # at each point of the burst, about as many of each kind were served
        head = order[: int(300 * share)]
        streams = sum(head)
        assert abs(streams - (len(head) - streams)) <= 0.2 * len(head), (share, streams, len(head))


def _committed_then(server: AicyProcess, key: str, holder: Holder) -> tuple[int, bytes | Exception]:
    """A raw non-stream that waits past the grace period (committed to 200), then gets the slot."""
    committed = threading.Event()
    outcome: dict[str, object] = {}

    def call() -> None:
        body = {"model": "q1", "messages": [{"role": "user", "content": "late"}]}
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.stream(
            "POST", f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=60
        ) as r:
            outcome["status"] = r.status_code
            committed.set()
            try:
                outcome["body"] = r.read()
            except httpx.HTTPError as exc:
                outcome["body"] = exc

    thread = threading.Thread(target=call)
    thread.start()
    assert committed.wait(30), "the waiting non-stream was committed to 200"
    holder.release()
    thread.join()
    return outcome["status"], outcome["body"]  # type: ignore[return-value]


def test_a_committed_reply_whose_upstream_fails_drops_the_connection(
    server: AicyProcess, upstream: FaultUpstream, admin: httpx.Client
) -> None:
    key = _key(server, "drop-500")
    holder = Holder(server, key, upstream)
    upstream.queue("500")
    status, body = _committed_then(server, key, holder)
    assert status == 200
    assert isinstance(body, httpx.RemoteProtocolError), "a broken reply, not an error body under the 200"
    lines = admin.get("/admin/usage/lines", params={"account": "drop-500"}).json()["data"]
    assert [line["status"] for line in lines if line["cost"] == 0][:1] == ["failed"]
    assert admin.get("/admin/accounts/drop-500").json()["reserved"] == 0


def test_a_committed_reply_refused_by_the_upstream_is_an_error_body(
    server: AicyProcess, upstream: FaultUpstream
) -> None:
    key = _key(server, "keep-400")
    holder = Holder(server, key, upstream)
    upstream.queue("400")
    status, body = _committed_then(server, key, holder)
    assert status == 200 and isinstance(body, bytes)
    error = orjson.loads(body.lstrip(b"\n"))["error"]
    assert error["code"] == "context_length_exceeded", "a retry cannot cure it: the client reads why"


def test_the_sdk_retries_a_padded_reply_dropped_at_the_start_deadline(
    server: AicyProcess, upstream: FaultUpstream, admin: httpx.Client
) -> None:
    """The guide's promise: the server closes the connection, and the SDK's own retry logic runs."""
    key = _key(server, "drop-deadline")
    holder = Holder(server, key, upstream)
    strict = OpenAI(base_url=server.base_url, api_key=key, max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        strict.chat.completions.create(model="q1", messages=[{"role": "user", "content": "x"}])
    release = threading.Timer(5.0, holder.release)  # after the next attempt's deadline would have passed once
    release.start()
    default = OpenAI(base_url=server.base_url, api_key=key)  # the SDK as customers run it
    reply = default.chat.completions.create(model="q1", messages=[{"role": "user", "content": "x"}])
    release.join()
    assert reply.choices[0].message.content == "Hello from the fault upstream."
    statuses = [
        line["status"]
        for line in admin.get("/admin/usage/lines", params={"account": key and "drop-deadline"}).json()[
            "data"
        ]
    ]
    assert statuses.count("queue_timeout") >= 2 and statuses.count("completed") == 1, statuses
    assert admin.get("/admin/accounts/drop-deadline").json()["reserved"] == 0
