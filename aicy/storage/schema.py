"""Tables, in SQLAlchemy Core. Migrations (``storage.migrations``) create and evolve them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
    true,
)

SERIAL = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData()

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", BigInteger, nullable=False),
    Column("balance", BigInteger, nullable=False, server_default="0"),
    Column("reserved", BigInteger, nullable=False, server_default="0"),
    Column("email", String(320), nullable=True, unique=True),  # a console sign-in name, lower case
    Column("password_hash", Text, nullable=True),  # argon2id; no password: no console sign-in
    Column("session_epoch", Integer, nullable=False, server_default="0"),  # bumped: older sessions end
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("models", Text, nullable=True),
    Column("ips", Text, nullable=True),
    Column("spend_limit", BigInteger, nullable=True),
    Column("spend_limit_daily", BigInteger, nullable=True),
    Column("spend_limit_monthly", BigInteger, nullable=True),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("shared", Boolean, nullable=False, server_default=false()),
    Column("suspended_at", BigInteger, nullable=True),
    Column("suspended_reason", Text, nullable=True),
)

responses = Table(
    "responses",
    metadata,
    Column("id", String(80), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("previous_response_id", String(80), nullable=True),
    Column("body", Text, nullable=False),
    Column("input_items", Text, nullable=False),
    Column("channel", String(100), nullable=True),
    Column("upstream_id", String(200), nullable=True),  # the relaying upstream's own id (it may repeat)
    Index("ix_responses_account", "account_id"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("body", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("body", Text, nullable=False),
    Column("sealed_keys", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

key_spend = Table(
    "key_spend",
    metadata,
    Column("key_id", String(64), ForeignKey("api_keys.id"), primary_key=True),
    Column("period", String(16), primary_key=True),
    Column("spent", BigInteger, nullable=False, server_default="0"),
    Column("reserved", BigInteger, nullable=False, server_default="0"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("node", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("periods", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("settled_at", BigInteger, nullable=True),
    Column("cost", BigInteger, nullable=True),
    Index("ix_reservations_open", "node", "status"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("reference", String(100), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_ledger_account", "account_id"),
)

usage_log = Table(
    "usage_log",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("created_at", BigInteger, nullable=False),
    Column("request_id", String(64), nullable=True),
    Column("account_id", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("channel", String(100), nullable=True),
    Column("upstream_model", String(200), nullable=True),
    Column("input_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("uncollected", BigInteger, nullable=False, server_default="0"),
    Column("latency_ms", Integer, nullable=False),
    Column("ttft_ms", Integer, nullable=True),
    Column("queue_ms", Integer, nullable=False, server_default="0"),
    Column("status", String(32), nullable=False),
    Column("client_ip", String(64), nullable=True),
    Column("estimated", Boolean, nullable=False, server_default=false()),
    Column("omitted_tools", String(500), nullable=True),  # hosted tools the backend was not offered
    Index("ix_usage_account_time", "account_id", "created_at"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),  # SHA-256 of what the request asked for
    Column("result", Text, nullable=True),  # what the first request returned, as JSON
    Column("created_at", BigInteger, nullable=False),
)

topup_codes = Table(
    "topup_codes",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("code_hash", String(64), nullable=False, unique=True),  # SHA-256 of the code; never the code
    Column("hint", String(8), nullable=False),  # its last characters, to tell codes apart
    Column("batch_id", String(64), nullable=False),
    Column("value", BigInteger, nullable=False),  # micro-units credited on redeem
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("redeemed_at", BigInteger, nullable=True),
    Column("redeemed_by", String(64), ForeignKey("accounts.id"), nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Column("note", Text, nullable=True),
    Index("ix_topup_codes_batch", "batch_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("created_at", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),  # the admin key's id, or "cli"
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=True),
    Column("details", Text, nullable=True),  # JSON
    Index("ix_audit_log_time", "created_at"),
)

probe_results = Table(
    "probe_results",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("suite", String(200), nullable=False),
    Column("channel", String(300), nullable=False),  # a channel's name, or the base URL in customer mode
    Column("model", String(200), nullable=False),
    Column("upstream_model", String(200), nullable=True),
    Column("prompt_id", String(200), nullable=False),
    Column("effort", String(32), nullable=True),
    Column("max_output_tokens", Integer, nullable=False),
    Column("limit_case", Boolean, nullable=False, server_default=false()),
    Column("answer", Text, nullable=False),
    Column("reasoning", Text, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("ttft_ms", Integer, nullable=True),
    Column("input_tokens", BigInteger, nullable=True),  # as reported; None when the upstream did not say
    Column("cached_tokens", BigInteger, nullable=True),
    Column("output_tokens", BigInteger, nullable=True),
    Column("reasoning_tokens", BigInteger, nullable=True),
    Column("own_input_tokens", BigInteger, nullable=True),  # aicy's count with the family's tokenizer
    Column("own_output_tokens", BigInteger, nullable=True),
    Column("status", String(32), nullable=False),
    Column("reason", Text, nullable=True),
    Column("cost", BigInteger, nullable=False, server_default="0"),
    Index("ix_probe_results_channel_time", "channel", "model", "created_at"),
    Index("ix_probe_results_run", "run_id"),
)

probe_checks = Table(
    "probe_checks",
    metadata,
    Column("id", SERIAL, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("channel", String(300), nullable=False),
    Column("model", String(200), nullable=False),
    Column("name", String(32), nullable=False),
    Column("verdict", String(8), nullable=False),  # pass | fail | skip
    Column("reason", Text, nullable=False),
    Column("evidence", Text, nullable=True),  # JSON
    Index("ix_probe_checks_channel_time", "channel", "created_at"),
)
