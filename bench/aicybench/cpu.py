"""``python -m aicybench.cpu [--aicy PATH ...]``: the aicy server's own CPU time per request.

Latency on these shared VMs swings with whatever else runs; the CPU seconds the aicy process itself spends
per request hardly do. For each build given (``--aicy`` paths, alternating, ``--rounds`` times) this starts
the mock and aicy as ``make bench`` does, sends ``--requests`` sequential requests per kind (non-streamed
Chat, streamed Chat, non-streamed Responses) over one kept-alive connection, and reads the server's
user + system CPU time from /proc before and after. It prints microseconds per request, median of rounds.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from aicybench import targets

KINDS = {
    "chat": ("chat/completions", False),
    "chat-stream": ("chat/completions", True),
    "responses": ("responses", False),
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def body(target: targets.Target, api: str, stream: bool) -> bytes:
    if api == "responses":
        return orjson.dumps({"model": target.model, "input": "Say hello.", "stream": stream})
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello."}]
    return orjson.dumps({"model": target.model, "messages": messages, "stream": stream})


def measure(target: targets.Target, requests: int) -> dict[str, float]:
    assert target.service is not None
    pid = target.service.process.pid
    where = urlsplit(target.base_url)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port)
    headers = {"Authorization": target.authorization, "Content-Type": "application/json"}

    def post(path: str, payload: bytes) -> None:
        connection.request("POST", f"{where.path}/{path}", body=payload, headers=headers)
        reply = connection.getresponse()
        data = reply.read()
        assert reply.status == 200, data[:200]

    out = {}
    for kind, (api, stream) in KINDS.items():
        payload = body(target, api, stream)
        for _ in range(50):  # warm-up
            post(api, payload)
        before = cpu_seconds(pid)
        for _ in range(requests):
            post(api, payload)
        out[kind] = (cpu_seconds(pid) - before) / requests * 1e6
    connection.close()
    return out


def main() -> None:
    bench = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser()
    p.add_argument("--aicy", type=Path, action="append", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=1500)
    args = p.parse_args()
    results: dict[str, dict[str, list[float]]] = {str(a): {k: [] for k in KINDS} for a in args.aicy}
    with tempfile.TemporaryDirectory(prefix="aicy-cpu-") as tmp:
        logs = Path(tmp) / "logs"
        logs.mkdir()
        for round_number in range(args.rounds):
            for aicy in args.aicy:
                work = Path(tmp) / f"w{round_number}-{len(str(aicy))}-{aicy.parent.name}"
                tools = targets.Tools(aicy, bench / ".venv-litellm" / "bin" / "litellm", bench, work, logs)
                tools.work.mkdir(parents=True, exist_ok=True)
                with targets.mock_upstream(tools) as mock, targets.aicy_gateway(tools, mock) as target:
                    figures = measure(target, args.requests)
                for kind, value in figures.items():
                    results[str(aicy)][kind].append(value)
                shown = ", ".join(f"{k} {v:.0f} us" for k, v in figures.items())
                print(f"round {round_number + 1} {aicy}: {shown}", flush=True)
    for aicy, kinds in results.items():
        print(f"{aicy}: " + ", ".join(f"{k} {statistics.median(v):.0f} us" for k, v in kinds.items()))


if __name__ == "__main__":
    main()
