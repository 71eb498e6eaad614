from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from tests.support import AicyProcess, Operator

TEST_MAX_BODY = 1024 * 1024


@pytest.fixture(scope="session")
def aicy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AicyProcess]:
    """One real aicy server for the session, on the embedded model."""
    server = AicyProcess(
        Path(tmp_path_factory.mktemp("aicy")),
        extra_env={
            "AICY_ENGINE_MAX_OUTPUT_TOKENS": "512",
            "AICY_MAX_BODY_BYTES": str(TEST_MAX_BODY),
            "AICY_BREAKER_COOLDOWN_SECONDS": "1",
            "AICY_PROBE_INTERVAL_SECONDS": "0.2",
            "AICY_UPSTREAM_RETRY_WAIT_MAX": "0.5",
        },
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_key(aicy: AicyProcess) -> str:
    """A customer key whose account has money for the priced catalog models."""
    key = aicy.new_key("customer-a")
    aicy.cli("accounts", "topup", "customer-a", "1000")
    return key


@pytest.fixture(scope="session")
def other_key(aicy: AicyProcess) -> str:
    key = aicy.new_key("customer-b")
    aicy.cli("accounts", "topup", "customer-b", "1000")
    return key


@pytest.fixture(scope="session")
def client(aicy: AicyProcess, api_key: str) -> OpenAI:
    return OpenAI(base_url=aicy.base_url, api_key=api_key, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def other_client(aicy: AicyProcess, other_key: str) -> OpenAI:
    return OpenAI(base_url=aicy.base_url, api_key=other_key, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def admin_key(aicy: AicyProcess) -> str:
    out = aicy.cli("keys", "create", "--admin", "--name", "test-admin").stdout
    return out.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def admin(aicy: AicyProcess, admin_key: str) -> Iterator[httpx.Client]:
    """An HTTP client for /admin with an admin key."""
    with httpx.Client(
        base_url=aicy.root_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=60
    ) as c:
        yield c


@pytest.fixture
def operator(admin: httpx.Client) -> Iterator[Operator]:
    op = Operator(admin)
    yield op
    op.cleanup()
