"""``python -m aicybench.mock_server --port P``: serve the mock upstream on 127.0.0.1, one process."""

from __future__ import annotations

import argparse

import uvicorn

from aicybench.mock_app import MockConfig, MockUpstream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--chunk-gap-ms", type=float, default=0.0)
    parser.add_argument("--completion-tokens", type=int, default=32)
    args = parser.parse_args()
    config = MockConfig(args.delay_ms, args.chunk_gap_ms, args.completion_tokens)
    uvicorn.run(
        MockUpstream(config),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
