"""Independent servers for the upstream client's tests, each a real program in a subprocess on free ports:
Debian's ``tinyproxy`` (an HTTP proxy with basic auth), ``microsocks`` (a SOCKS5 proxy with user and
password) and ``nginx`` (a TLS upstream with a test CA from ``trustme``, a compressing upstream, a TLS
front making tinyproxy an ``https://`` proxy). ``make test`` installs them; without one a test is skipped
saying which, except in CI, where it fails."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

from tests.support import free_port

STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
PROXY_USER = "alice"
PROXY_PASSWORD = "pr0xy-s3cret-pass"


def program(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        message = f"{name} is not installed (`make test` installs it: apt-get install {name})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not listen on {port}: {log.read_text(errors='replace')[-2000:]}")


@dataclass
class Daemon:
    argv: list[str]
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, *ports: int) -> Daemon:
        out = open(self.log, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        for port in ports or (self.port,):
            wait_for_port(port, self.proc, self.log)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Certificates:
    """A test CA, a server certificate it signed (for ``localhost``, 127.0.0.1 and an IDNA name), and a
    client certificate it signed; as PEM files."""

    folder: Path
    ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = self.folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        server = self.ca.issue_cert("localhost", "127.0.0.1", "xn--bcher-kva.test")
        self.server_cert = self.folder / "server.pem"
        self.server_key = self.folder / "server.key"
        server.private_key_pem.write_to_path(str(self.server_key))
        self.server_cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
        client = self.ca.issue_cert("aicy-client@example.test")
        self.client_cert = self.folder / "client.pem"
        self.client_key = self.folder / "client.key"
        client.private_key_pem.write_to_path(str(self.client_key))
        self.client_cert.write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))


def tinyproxy(folder: Path) -> Daemon:
    binary = program("tinyproxy")
    port = free_port()
    config = folder / "tinyproxy.conf"
    config.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 64\nLogLevel Connect\n"
        f'LogFile "{folder / "tinyproxy.log"}"\nBasicAuth {PROXY_USER} {PROXY_PASSWORD}\n'
        "Allow 127.0.0.1\nDisableViaHeader Yes\n"
    )
    return Daemon([binary, "-d", "-c", str(config)], port, folder / "tinyproxy.out").start()


def microsocks(folder: Path) -> Daemon:
    binary = program("microsocks")
    port = free_port()
    argv = [binary, "-i", "127.0.0.1", "-p", str(port), "-u", PROXY_USER, "-P", PROXY_PASSWORD]
    return Daemon(argv, port, folder / "microsocks.out").start()


@dataclass
class Nginx:
    """Ports: ``tls`` (TLS, gzip, in front of ``upstream``), ``mtls`` (the same, asking for a client
    certificate), ``plain`` (gzip, no TLS), ``tls_proxy`` (TLS in front of ``proxy_port``, when given)."""

    daemon: Daemon
    tls: int
    mtls: int
    plain: int
    tls_proxy: int | None


def nginx(folder: Path, certs: Certificates, upstream_port: int, proxy_port: int | None = None) -> Nginx:
    binary = program("nginx")
    if proxy_port is not None and not STREAM_MODULE.exists():
        message = "nginx's stream module is not installed (`make test` installs libnginx-mod-stream)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    tls, mtls, plain = free_port(), free_port(), free_port()
    tls_proxy = free_port() if proxy_port is not None else None
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    temp = "".join(f"  {sub}_temp_path {folder / sub};\n" for sub in ("proxy", "fastcgi", "uwsgi", "scgi"))
    location = (
        "    location / {\n"
        "      proxy_pass http://fault;\n      proxy_http_version 1.1;\n"
        '      proxy_set_header Connection "";\n      proxy_buffering off;\n'
        "    }\n"
    )
    certificate = f"    ssl_certificate {certs.server_cert};\n    ssl_certificate_key {certs.server_key};\n"
    stream = ""
    if tls_proxy is not None:
        stream = (
            "stream {\n  server {\n"
            f"    listen 127.0.0.1:{tls_proxy} ssl;\n{certificate}"
            f"    proxy_pass 127.0.0.1:{proxy_port};\n  }}\n}}\n"
        )
    config = folder / "nginx.conf"
    config.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + (f"load_module {STREAM_MODULE};\n" if tls_proxy is not None else "")
        + f"worker_processes 1;\ndaemon off;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"  access_log {folder / 'access.log'};\n"
        f"  client_body_temp_path {folder / 'body'};\n{temp}"
        f"  upstream fault {{ server 127.0.0.1:{upstream_port}; keepalive 8; }}\n"
        "  gzip on;\n  gzip_min_length 0;\n  gzip_proxied any;\n"
        "  gzip_types application/json text/event-stream;\n"
        f"  server {{\n    listen 127.0.0.1:{tls} ssl;\n{certificate}{location}  }}\n"
        f"  server {{\n    listen 127.0.0.1:{mtls} ssl;\n{certificate}"
        f"    ssl_verify_client on;\n    ssl_client_certificate {certs.ca_file};\n{location}  }}\n"
        f"  server {{\n    listen 127.0.0.1:{plain};\n{location}  }}\n"
        "}\n" + stream
    )
    argv = [binary, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
    ports = [tls, mtls, plain] + ([tls_proxy] if tls_proxy is not None else [])
    daemon = Daemon(argv, tls, folder / "nginx.out").start(*ports)
    return Nginx(daemon, tls, mtls, plain, tls_proxy)
