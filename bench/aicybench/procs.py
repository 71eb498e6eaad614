"""Starting and stopping the processes a run needs (mock, gateways), each in its own process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class Unavailable(RuntimeError):
    """A path cannot be measured in this run (a command failed, a server never became ready)."""


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_command(argv: Sequence[str], env: Mapping[str, str], cwd: Path, timeout_s: float = 120) -> str:
    """Run a short command; its stdout, or Unavailable with its exit code and last lines of output."""
    done = subprocess.run(
        list(argv), env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout_s
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise Unavailable(f"`{' '.join(argv[-6:])}` exited with {done.returncode}: {tail}")
    return done.stdout


@contextmanager
def started(
    name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, log_dir: Path
) -> Iterator[Service]:
    """Start a server in a new session; on exit send SIGTERM to its group, SIGKILL after 10 s."""
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield Service(name, process, log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_ready(service: Service, url: str, timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; Unavailable if the process exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise Unavailable(
                f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise Unavailable(f"{service.name} did not answer {url} within {timeout_s:.0f} s:\n{service.log_tail()}")
