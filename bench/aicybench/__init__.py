"""aicy's benchmark harness: a mock OpenAI upstream, load runs against three paths, the engine figures.

Run it with ``make bench`` from the repository root; ``bench/README.md`` explains every figure.
"""
