"""Raw llama-cpp-python generation of the benchmark prompt, loaded exactly as aicy loads its model.

Run by aicy's own interpreter (it needs ``llama_cpp`` and ``aicy``), not the bench venv:
``.venv/bin/python bench/aicybench/engine_raw.py --prompt ... --max-tokens 128``, then one ``run`` line on
stdin per generation; each prints the timings of one greedy generation with the sampling aicy uses at
temperature 0. It stays loaded (and idle) between runs, so runs can alternate with runs through aicy.

``batched N`` prints the ceiling for N streams: llama.cpp alone decoding N greedy sequences of the prompt in
one batch per step, in a context built as aicy's engine builds it, with no scheduler, HTTP or event loop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import llama_cpp
from llama_cpp import Llama

from aicy.engine.context import ContextShape, Feed, SequenceContext
from aicy.engine.model_file import default_model_path
from aicy.engine.template import ChatTemplate
from aicy.settings import Settings


def load(settings: Settings) -> Llama:
    """The same constructor arguments as ``aicy.engine.llama.LlamaEngine``."""
    path = settings.engine_model_path or default_model_path()
    return Llama(
        model_path=str(path),
        n_ctx=settings.engine_context,
        n_threads=settings.engine_threads,
        n_threads_batch=settings.engine_threads,
        n_batch=512,
        verbose=False,
    )


def prompt_tokens(llm: Llama, prompt: str) -> list[int]:
    def text(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    template = ChatTemplate(
        llm.metadata["tokenizer.chat_template"],
        bos_token=text(llm.token_bos()),
        eos_token=text(llm.token_eos()),
    )
    rendered = template.render([{"role": "user", "content": prompt}])
    return llm.tokenize(rendered.encode("utf-8"), add_bos=False, special=True)


def generate(
    llm: Llama, tokens: list[int], eog: set[int], max_tokens: int, max_seconds: float = 1e9
) -> dict[str, Any]:
    """One greedy generation; stops early (``truncated``) after ``max_seconds``."""
    start = time.perf_counter()
    truncated = False
    first = last = start
    produced = 0
    stream = llm.generate(
        tokens, top_k=0, top_p=0.9, min_p=0.0, temp=0.0, repeat_penalty=1.0, presence_penalty=0.0,
        frequency_penalty=0.0,
    )  # fmt: skip
    try:
        for token in stream:
            if token in eog:
                break
            llm.detokenize([token])
            last = time.perf_counter()
            produced += 1
            first = last if produced == 1 else first
            if produced >= max_tokens:
                break
            if last - start > max_seconds:
                truncated = True
                break
    finally:
        stream.close()
    return {
        "ttft_ms": (first - start) * 1000,
        "total_ms": (last - start) * 1000,
        "completion_tokens": produced,
        "decode_tokens_per_s": (produced - 1) / (last - first) if produced > 1 else 0.0,
        "end_to_end_tokens_per_s": produced / (last - start) if produced else 0.0,
        "truncated": truncated,
    }


def batched(
    llm: Llama, settings: Settings, tokens: list[int], streams: int, max_tokens: int
) -> dict[str, Any]:
    """Each prompt read in a decode call of its own (as the engine reads prompts), then one token of every
    sequence per decode call; aggregate tokens/s over the whole run."""
    shape = ContextShape(settings.engine_context, streams, 512, settings.engine_threads)
    context = SequenceContext(llm._model, shape)
    samplers = [llama_cpp.llama_sampler_init_greedy() for _ in range(streams)]
    try:
        start = time.perf_counter()
        last: list[int] = []
        for seq, sampler in enumerate(samplers):
            [index] = context.decode([Feed(seq, 0, tokens, logits=True)])
            last.append(context.sample(sampler, index))
        first = time.perf_counter()
        for pos in range(len(tokens), len(tokens) + max_tokens - 1):
            feeds = [Feed(seq, pos, (token,), logits=True) for seq, token in enumerate(last)]
            indexes = context.decode(feeds)
            last = [context.sample(sampler, i) for sampler, i in zip(samplers, indexes, strict=True)]
        end = time.perf_counter()
    finally:
        for sampler in samplers:
            llama_cpp.llama_sampler_free(sampler)
        context.close()
    return {
        "streams": streams,
        "aggregate_tokens_per_s": streams * max_tokens / (end - start),
        "decode_tokens_per_s": streams * (max_tokens - 1) / (end - first),
        "prompts_ms": (first - start) * 1000,
    }


def main() -> None:
    """Load once, print a ``ready`` line, then one JSON line of timings per ``run`` line read from stdin."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    args = parser.parse_args()
    settings = Settings()
    llm = load(settings)
    tokens = prompt_tokens(llm, args.prompt)
    vocab = llm._model.vocab
    eog = {t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}
    generate(llm, tokens, eog, 4)  # warm-up
    ready = {
        "llama_cpp_python": llama_cpp.__version__,
        "model_path": str(settings.engine_model_path or default_model_path()),
        "threads": settings.engine_threads,
        "prompt_tokens": len(tokens),
    }
    print(json.dumps({"ready": ready}), flush=True)
    for line in sys.stdin:
        command = line.split()
        if command == ["run"]:
            print(json.dumps(generate(llm, tokens, eog, args.max_tokens, args.max_seconds)), flush=True)
        elif command[:1] == ["batched"]:
            figures = batched(llm, settings, tokens, int(command[1]), args.max_tokens)
            print(json.dumps(figures), flush=True)
    llm.close()


if __name__ == "__main__":
    main()
