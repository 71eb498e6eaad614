from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.support import AicyProcess

TEST_MAX_BODY = 1024 * 1024


@pytest.fixture(scope="session")
def aicy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AicyProcess]:
    """One real aicy server for the session, on the embedded model."""
    server = AicyProcess(
        Path(tmp_path_factory.mktemp("aicy")),
        extra_env={"AICY_ENGINE_MAX_OUTPUT_TOKENS": "512", "AICY_MAX_BODY_BYTES": str(TEST_MAX_BODY)},
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_key(aicy: AicyProcess) -> str:
    return aicy.new_key("customer-a")


@pytest.fixture(scope="session")
def other_key(aicy: AicyProcess) -> str:
    return aicy.new_key("customer-b")


@pytest.fixture(scope="session")
def client(aicy: AicyProcess, api_key: str) -> OpenAI:
    return OpenAI(base_url=aicy.base_url, api_key=api_key, max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def other_client(aicy: AicyProcess, other_key: str) -> OpenAI:
    return OpenAI(base_url=aicy.base_url, api_key=other_key, max_retries=0, timeout=120)
