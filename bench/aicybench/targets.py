"""The paths under test: the mock itself (direct), aicy relaying to it, LiteLLM relaying to it, aicy's engine.

Each launcher is a context manager that starts what the path needs, checks one real request end to end,
yields a ``Target`` and stops everything on exit. A path that cannot run raises ``Unavailable``.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from aicybench.procs import Service, Unavailable, free_port, run_command, started, wait_ready

BENCH_MODEL = "bench-model"
ENGINE_MODEL = "smollm2-135m-instruct"
_SCRUBBED_PREFIXES = ("AICY_", "LITELLM_", "DATABASE_URL")


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    base_url: str  # ends with /v1
    authorization: str
    model: str
    service: Service | None = None  # the server process behind it, when the harness started one

    def url(self, api: str) -> str:
        """``api`` is ``chat/completions`` or ``responses``."""
        return f"{self.base_url}/{api}"

    def check_alive(self) -> None:
        """Unavailable, with the end of its log, if the server behind this target has exited."""
        if self.service is None or self.service.process.poll() is None:
            return
        code = self.service.process.returncode
        # The harness signals a server only after its section; a clean exit before that came from outside.
        how = "was stopped from outside the harness (exit 0)" if code == 0 else f"exited with {code}"
        raise Unavailable(f"{self.service.name} {how} during the run:\n{self.service.log_tail(6)}")


@dataclass(frozen=True, slots=True)
class Tools:
    """Where the programs are and where a run may write."""

    aicy: Path
    litellm: Path
    bench_dir: Path
    work: Path
    logs: Path


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    return {**env, **extra}


def post_json(url: str, body: dict[str, Any], authorization: str | None = None, timeout_s: float = 30) -> Any:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, data=orjson.dumps(body), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as reply:
        return orjson.loads(reply.read())


def _smoke(target: Target) -> None:
    body = {"model": target.model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}
    try:
        reply = post_json(target.url("chat/completions"), body, target.authorization, timeout_s=60)
    except urllib.error.HTTPError as exc:
        raise Unavailable(f"{target.name}: a test request got {exc.code}: {exc.read()[:300]!r}") from exc
    if not reply.get("choices"):
        raise Unavailable(f"{target.name}: a test request got no choices: {str(reply)[:300]}")


@contextmanager
def mock_upstream(tools: Tools) -> Iterator[str]:
    """Start the mock; yields its base URL (``http://127.0.0.1:P/v1``)."""
    port = free_port()
    argv = [sys.executable, "-m", "aicybench.mock_server", "--port", str(port)]
    with started("mock", argv, _clean_env(), tools.bench_dir, tools.logs) as service:
        wait_ready(service, f"http://127.0.0.1:{port}/health", 30)
        yield f"http://127.0.0.1:{port}/v1"


def configure_mock(mock_base: str, delay_ms: float, chunk_gap_ms: float = 0.0, tokens: int = 32) -> None:
    config = {"delay_ms": delay_ms, "chunk_gap_ms": chunk_gap_ms, "completion_tokens": tokens}
    request = urllib.request.Request(
        mock_base.removesuffix("/v1") + "/mock/config", data=orjson.dumps(config), method="PUT"
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


def direct(mock_base: str) -> Target:
    return Target("direct", mock_base, "Bearer sk-mock", BENCH_MODEL)


def _aicy_data(tools: Tools, name: str, engine: bool) -> tuple[Path, dict[str, str], str]:
    """A fresh data dir, the environment for it, and a customer key made in it."""
    data = tools.work / name
    data.mkdir(parents=True, exist_ok=True)
    env = _clean_env(AICY_DATA_DIR=str(data), AICY_ENGINE_ENABLED="true" if engine else "false")
    out = run_command([str(tools.aicy), "keys", "create", "--name", "bench"], env, data)
    run_command(
        [str(tools.aicy), "accounts", "topup", "default", "1000000"], env, data
    )  # the full billing path
    return data, env, out.strip().splitlines()[-1]


@contextmanager
def _aicy_server(
    tools: Tools, name: str, data: Path, env: dict[str, str], key: str, model: str
) -> Iterator[Target]:
    port = free_port()
    with started(name, [str(tools.aicy), "serve"], {**env, "AICY_PORT": str(port)}, data, tools.logs) as svc:
        wait_ready(svc, f"http://127.0.0.1:{port}/health", 180)
        target = Target(name, f"http://127.0.0.1:{port}/v1", f"Bearer {key}", model, svc)
        _smoke(target)
        yield target


def _catalog_entry(tools: Tools, env: dict[str, str], data: Path) -> None:
    """Put the mock's model in aicy's catalog, where aicy has one (a channel alone does not list it)."""
    prices = {"input": 1_250_000, "cached_input": 125_000, "output": 10_000_000}  # billed like gpt-5
    model = {"id": BENCH_MODEL, "context_window": 128000, "max_output_tokens": 16384, "prices": prices}
    try:
        run_command([str(tools.aicy), "models", "set", orjson.dumps(model).decode()], env, data)
    except Unavailable as exc:
        print(f"[aicy] note: `aicy models set` failed, relying on the channel alone: {exc}")


@contextmanager
def aicy_gateway(tools: Tools, mock_base: str) -> Iterator[Target]:
    """aicy relaying to the mock through a Chat Completions and a Responses channel (each request goes to the
    channel of its own API, relayed as is); the embedded engine is off."""
    data, env, key = _aicy_data(tools, "aicy", engine=False)
    try:
        for wire in ("chat", "responses"):
            channel = [
                "channels",
                "add",
                "--name",
                f"mock-{wire}",
                "--base-url",
                mock_base,
                "--api-key",
                "sk-mock",
            ]
            run_command([str(tools.aicy), *channel, "--wire", wire, "--models", BENCH_MODEL], env, data)
    except Unavailable as exc:
        raise Unavailable(
            f"aicy cannot relay to an upstream yet (`aicy channels add` failed): {exc}"
        ) from exc
    _catalog_entry(tools, env, data)
    with _aicy_server(tools, "aicy", data, env, key, BENCH_MODEL) as target:
        yield target


@contextmanager
def aicy_engine(tools: Tools) -> Iterator[Target]:
    """aicy serving its embedded model (llama.cpp in process)."""
    data, env, key = _aicy_data(tools, "aicy-engine", engine=True)
    with _aicy_server(tools, "aicy-engine", data, env, key, ENGINE_MODEL) as target:
        yield target


_LITELLM_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {api_base}
      api_key: sk-mock
"""


@contextmanager
def litellm_gateway(tools: Tools, mock_base: str) -> Iterator[Target]:
    """LiteLLM proxy, one worker, no database, no master key, offline cost map."""
    if not tools.litellm.exists():
        raise Unavailable(f"LiteLLM is not installed at {tools.litellm} (make bench installs it)")
    folder = tools.work / "litellm"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(_LITELLM_CONFIG.format(model=BENCH_MODEL, api_base=mock_base))
    env = _clean_env(
        LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY="true"
    )
    port = free_port()
    argv = [str(tools.litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with started("litellm", [*argv, "--num_workers", "1"], env, folder, tools.logs) as svc:
        wait_ready(svc, f"http://127.0.0.1:{port}/health/liveliness", 180)
        target = Target("litellm", f"http://127.0.0.1:{port}/v1", "Bearer sk-bench", BENCH_MODEL, svc)
        _smoke(target)
        yield target
