"""Every example of the customer guide runs verbatim, with only the base URL, key and model replaced."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import MODEL, AicyProcess

GUIDE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_ca4505bd45ddbe8c.txt"
GUIDE_BASE_URL = "https://api.aicy.pro/v1"


def _guide() -> str:
    if not GUIDE.exists():
        pytest.skip(f"the customer guide is not at {GUIDE} (shared/ must sit beside the repository)")
    return GUIDE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def guide_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AicyProcess]:
    """The guide's examples set no output limit; this server caps the embedded model's output at 48 tokens,
    so the examples run verbatim and take the same few seconds on a loaded machine as on a quiet one."""
    server = AicyProcess(
        Path(tmp_path_factory.mktemp("guide")),
        extra_env={"AICY_ENGINE_MAX_OUTPUT_TOKENS": "48", "AICY_ENGINE_CAPACITY": "2"},
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def guide_key(guide_server: AicyProcess) -> str:
    return guide_server.new_key("guide-reader")


def _adapt(example: str, aicy: AicyProcess, key: str) -> str:
    example = example.replace(GUIDE_BASE_URL, aicy.base_url).replace("YOUR_API_KEY", key)
    return re.sub(r'"gpt-[0-9a-z.\-]+"', f'"{MODEL}"', example)


def curl_examples(text: str) -> list[str]:
    return re.findall(r"^curl https://.*?\}'", text, re.MULTILINE | re.DOTALL)


def python_examples(text: str) -> list[str]:
    return re.findall(
        r"^from openai import OpenAI$.*?print\(resp\.output_text\)", text, re.MULTILINE | re.DOTALL
    )


def test_the_guide_has_the_examples_we_expect() -> None:
    text = _guide()
    assert len(curl_examples(text)) == 2
    assert len(python_examples(text)) == 1


def test_curl_examples(guide_server: AicyProcess, guide_key: str) -> None:
    aicy, api_key = guide_server, guide_key
    for example in curl_examples(_guide()):
        run = subprocess.run(
            ["bash", "-c", _adapt(example, aicy, api_key)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        reply = json.loads(run.stdout)
        assert reply.get("error") is None, reply
        if reply["object"] == "response":
            assert reply["status"] in ("completed", "incomplete") and reply["output"]
        else:
            assert reply["object"] == "chat.completion" and reply["choices"][0]["message"]["content"]


def test_python_example(guide_server: AicyProcess, guide_key: str) -> None:
    aicy, api_key = guide_server, guide_key
    for example in python_examples(_guide()):
        run = subprocess.run(
            [sys.executable, "-c", _adapt(example, aicy, api_key)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        assert run.stdout.strip()
