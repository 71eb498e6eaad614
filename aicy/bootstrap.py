"""First start: create the admin account and its first key, and the text that tells how to call aicy; the
upstream HTTP client as the settings make it (the server and the CLI share it)."""

from __future__ import annotations

from aicy.domain.models import EMBEDDED_MODEL_ID
from aicy.settings import Settings
from aicy.storage.db import create_engine, migrate
from aicy.storage.keys import KeyStore
from aicy.storage.tx import Transactor
from aicy.upstream.http1 import Http1Client, Limits
from aicy.upstream.proxy import EnvProxies

ADMIN_ACCOUNT = "admin"
_CHAT_BODY = f'{{"model": "{EMBEDDED_MODEL_ID}", "messages": [{{"role": "user", "content": "Say hello."}}]}}'


async def first_start(settings: Settings) -> str | None:
    """Migrate; on an empty database create the admin account and key. Returns the new key, if any."""
    db = create_engine(settings.resolved_database_url)
    transactor = Transactor(db)
    try:
        await migrate(db)
        keys = KeyStore(db, transactor)
        if await keys.count_accounts():
            return None
        account = await keys.ensure_account(ADMIN_ACCOUNT, is_admin=True)
        _, key = await keys.create_key(account, "first key", role="admin")
        return key.secret
    finally:
        transactor.close()
        await db.dispose()


def how_to_call(base_url: str, key: str | None) -> str:
    shown = key or "YOUR_API_KEY"
    lines = [f"aicy is ready at {base_url}", ""]
    if key:
        lines += ["Your first API key (shown once; aicy keeps only its hash):", "", f"    {key}", ""]
    else:
        lines += ["Create an API key with:  .venv/bin/aicy keys create --name my-key", ""]
    lines += [
        "Call it with curl:",
        "",
        f"curl {base_url}/chat/completions \\",
        f'  -H "Authorization: Bearer {shown}" \\',
        '  -H "Content-Type: application/json" \\',
        "  -d '" + _CHAT_BODY + "'",
        "",
        "Or with Python (pip install openai):",
        "",
        "from openai import OpenAI",
        f'client = OpenAI(base_url="{base_url}", api_key="{shown}")',
        f'resp = client.responses.create(model="{EMBEDDED_MODEL_ID}", input="Say hello.")',
        "print(resp.output_text)",
        "",
    ]
    return "\n".join(lines)


def upstream_client(settings: Settings) -> Http1Client:
    """The HTTP client every channel shares, with the operator's bounds and the environment's proxies
    (ValueError naming the variable when one of those is not a usable proxy URL)."""
    limits = Limits(
        max_connections=settings.upstream_max_connections,
        max_connections_per_origin=settings.upstream_max_connections_per_origin,
        idle_seconds=settings.upstream_idle_seconds,
        dns_ttl_seconds=settings.upstream_dns_ttl_seconds,
        max_body_bytes=settings.upstream_max_body_bytes,
        max_error_body_bytes=settings.upstream_max_error_body_bytes,
    )
    proxies = EnvProxies(settings.http_proxy, settings.https_proxy, settings.no_proxy)
    return Http1Client(limits=limits, proxies=proxies)
