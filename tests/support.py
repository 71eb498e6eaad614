"""Test helpers: a real aicy process on a free port, and an independent token counter."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from aicy.engine.model_file import default_model_path

MODEL = "smollm2-135m-instruct"
# aicy honours these; the test servers it calls are all local, so the machine's own proxies are left out
PROXY_VARIABLES = frozenset(
    {"http_proxy", "https_proxy", "no_proxy", "aicy_http_proxy", "aicy_https_proxy", "aicy_no_proxy"}
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AicyProcess:
    """``aicy serve`` in a subprocess, with its own data folder and port."""

    data_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        outside = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_VARIABLES}
        return {
            **outside,
            "AICY_DATA_DIR": str(self.data_dir),
            "AICY_PORT": str(self.port),
            "AICY_HOST": "127.0.0.1",
            "AICY_LOG_LEVEL": "warning",
            **self.extra_env,
        }

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def start(self, timeout: float = 120.0) -> None:
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aicy", "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"aicy exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.root_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"aicy did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aicy", *args], env=self.env, capture_output=True, text=True, check=True
        )

    def new_key(self, account: str = "default", name: str = "test") -> str:
        out = self.cli("keys", "create", "--account", account, "--name", name).stdout
        return out.strip().splitlines()[-1]

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.root_url}/health", timeout=5).json()
        return body


@cache
def _tokenizer() -> Any:
    from llama_cpp import Llama

    return Llama(model_path=str(default_model_path()), vocab_only=True, verbose=False)


@cache
def _formatter() -> Any:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    llm = _tokenizer()
    return Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=llm.detokenize([llm.token_eos()], special=True).decode(),
        bos_token=llm.detokenize([llm.token_bos()], special=True).decode(),
    )


def count_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """Prompt size as llama-cpp-python's own chat formatter renders it: an independent check of usage."""
    prompt = _formatter()(messages=messages).prompt
    return len(_tokenizer().tokenize(prompt.encode(), add_bos=False, special=True))


def count_text_tokens(text: str) -> int:
    return len(_tokenizer().tokenize(text.encode(), add_bos=False, special=False))


class Operator:
    """Adds test models and channels through the admin API and removes them afterwards."""

    def __init__(self, admin: httpx.Client) -> None:
        self.admin = admin
        self.models: list[str] = []
        self.channels: list[str] = []

    def model(self, model_id: str, **fields: Any) -> str:
        body = {"id": model_id, "context_window": 8192, "max_output_tokens": 1024, **fields}
        reply = self.admin.post("/admin/models", json=body)
        assert reply.status_code == 201, reply.text
        self.models.append(model_id)
        return model_id

    def channel(self, name: str, base_url: str, models: list[str] | dict[str, str], **fields: Any) -> None:
        body = {"name": name, "base_url": base_url, "models": models, **fields}
        reply = self.admin.post("/admin/channels", json=body)
        assert reply.status_code == 201, reply.text
        self.channels.append(name)

    def health(self, name: str) -> dict[str, Any]:
        health: dict[str, Any] = self.admin.get(f"/admin/channels/{name}").json()["health"]
        return health

    def cleanup(self) -> None:
        for name in self.channels:
            self.admin.delete(f"/admin/channels/{name}")
        for model_id in self.models:
            self.admin.delete(f"/admin/models/{model_id}")


PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def fresh_postgres_database() -> str:
    """A new, empty database on the machine's PostgreSQL; its SQLAlchemy URL.

    Without a reachable server the test is skipped with the reason, except in CI, where it fails.
    """
    import asyncio
    import os
    import secrets

    import asyncpg
    import pytest

    name = f"aicy_test_{secrets.token_hex(4)}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({exc}); CI runs these tests")
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def drop_postgres_database(url: str) -> None:
    import asyncio

    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())
