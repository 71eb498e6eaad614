"""Every example of the customer guide runs verbatim, with only the base URL, key and model replaced."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import MODEL, AicyProcess

GUIDE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_ca4505bd45ddbe8c.txt"
GUIDE_BASE_URL = "https://api.aicy.pro/v1"


def _guide() -> str:
    if not GUIDE.exists():
        pytest.skip(f"the customer guide is not at {GUIDE} (shared/ must sit beside the repository)")
    return GUIDE.read_text(encoding="utf-8")


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


def test_curl_examples(aicy: AicyProcess, api_key: str) -> None:
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


def test_python_example(aicy: AicyProcess, api_key: str) -> None:
    for example in python_examples(_guide()):
        run = subprocess.run(
            [sys.executable, "-c", _adapt(example, aicy, api_key)],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        assert run.stdout.strip()
