"""Real Prometheus and nginx, started by the tests on loopback ports, stopped after."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rollouts.models import Router, RouterKind

PROMETHEUS = shutil.which("prometheus")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def require(binary, name):
    if binary is None:
        pytest.skip(f"{name} is not installed (make test installs it: apt-get install {name})")


class Upstream:
    """A tiny app version: answers its own name."""

    def __init__(self, name: str):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class Nginx:
    """nginx master in the foreground with its own prefix; the upstream block is an include."""

    def __init__(self, workdir: Path, stable: str):
        require(NGINX, "nginx")
        self.prefix = workdir
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.upstream_file = workdir / "upstream.conf"
        self.upstream_file.write_text(f"upstream app {{ server {stable}; }}\n")
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/tmp_body;
    proxy_temp_path {workdir}/tmp_proxy;
    fastcgi_temp_path {workdir}/tmp_fcgi;
    uwsgi_temp_path {workdir}/tmp_uwsgi;
    scgi_temp_path {workdir}/tmp_scgi;
    include {self.upstream_file};
    server {{
        listen 127.0.0.1:{self.port};
        location / {{ proxy_pass http://app; }}
    }}
}}
""")
        self.base = [NGINX, "-p", str(workdir), "-c", str(self.conf)]
        self.proc = subprocess.Popen([*self.base, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_http(f"http://127.0.0.1:{self.port}/")

    def define_router(self, name: str, stable: str, canary: str) -> Router:
        """What an administrator enters in the admin for this nginx."""
        router = Router(
            name=name,
            kind=RouterKind.NGINX,
            upstream_file=str(self.upstream_file),
            upstream_name="app",
            stable_server=stable,
            canary_server=canary,
            test_argv=[*self.base, "-t", "-q"],
            reload_argv=[*self.base, "-s", "reload"],
        )
        router.full_clean()
        router.save()
        return router

    def split(self, requests: int = 100) -> dict[str, int]:
        """Who answered ``requests`` requests. nginx's smooth weighted round robin makes any
        100 in a row follow the weights exactly, once the reload has replaced the old worker."""
        time.sleep(1)
        counts: dict[str, int] = {}
        for _ in range(requests):
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as response:
                name = response.read().decode()
            counts[name] = counts.get(name, 0) + 1
        return counts

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Prometheus:
    def __init__(self, workdir: Path, scrape_target: str):
        require(PROMETHEUS, "prometheus")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ["{scrape_target}"]
""")
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.url}/-/ready")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=15)
