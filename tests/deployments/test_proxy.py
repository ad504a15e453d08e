"""The shipped reverse-proxy configuration, for real: nginx in front of two web processes.

The compose file runs `deploy/nginx/warroom.conf` in front of every web container; here the
same file serves two local web processes, so HTTP and websockets are known to pass through
and a change made through one process reaches a screen held by the other.
"""

import asyncio
import re
import subprocess
from pathlib import Path

import pytest
import websockets
from asgiref.sync import sync_to_async

from deployments.models import Item
from tests.conftest import BASE_DIR, free_port, serving
from tests.deployments.test_live import Browserless, _receive_until, _session_cookie
from tests.rollouts.real_services import NGINX, require, wait_http

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SHIPPED = BASE_DIR / "deploy" / "nginx" / "warroom.conf"


class Proxy:
    def __init__(self, workdir: Path, backends: list[str]):
        require(NGINX, "nginx")
        self.port = free_port()
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        site = SHIPPED.read_text()
        assert "listen 80;" in site
        (workdir / "warroom.conf").write_text(site.replace("listen 80;", f"listen 127.0.0.1:{self.port};"))
        servers = "".join(f"    server {b.removeprefix('http://')};\n" for b in backends)
        (workdir / "upstream.conf").write_text(f"upstream warroom_web {{\n{servers}}}\n")
        conf = workdir / "nginx.conf"
        conf.write_text(f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/logs/access.log;
    client_body_temp_path {workdir}/tmp_body;
    proxy_temp_path {workdir}/tmp_proxy;
    fastcgi_temp_path {workdir}/tmp_fcgi;
    uwsgi_temp_path {workdir}/tmp_uwsgi;
    scgi_temp_path {workdir}/tmp_scgi;
    include {workdir}/upstream.conf;
    include {workdir}/warroom.conf;
}}
""")
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            wait_http(self.url + "/login/")
        except Exception:
            self.stop()  # never leave an nginx behind when the test cannot start
            raise

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


async def test_http_and_websockets_pass_the_proxy_and_reach_across_processes(crew, process_env, tmp_path):
    deployment, people = crew
    with serving(process_env, tmp_path) as first, serving(process_env, tmp_path) as second:
        proxy = await sync_to_async(Proxy)(tmp_path / "nginx", [first, second])
        try:
            po = await sync_to_async(_session_cookie)(people["po"])
            qa = await sync_to_async(_session_cookie)(people["qa"])
            url = proxy.url.replace("http://", "ws://") + f"/ws/deployments/{deployment.pk}/"
            # Several screens through the proxy: round robin puts them on both processes.
            screens = [
                await websockets.connect(url, additional_headers={"Cookie": f"sessionid={po}", "Origin": proxy.url})
                for _ in range(4)
            ]
            try:
                item = await sync_to_async(Item.objects.get)(deployment=deployment, text="Check 2.1")
                client = Browserless(proxy.url, qa)
                token = await sync_to_async(client.csrf_token)(f"/deployments/{deployment.pk}/")
                response = await sync_to_async(client.request)(
                    f"/deployments/{deployment.pk}/items/{item.pk}/",
                    f"revision={item.revision}&checked=1".encode(),
                    {"X-CSRFToken": token, "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded"},
                )
                assert response.status == 204
                for ws in screens:
                    message = await _receive_until(ws, f'id="item-{item.pk}"')
                    assert re.search(rf'id="cb-{item.pk}"[^>]*checked', message)
            finally:
                await asyncio.gather(*(ws.close() for ws in screens))
        finally:
            proxy.stop()
    # The servers have stopped and flushed their logs: both held screens.
    logs = [(tmp_path / f"web-{b.rsplit(':', 1)[1]}.log").read_text() for b in (first, second)]
    served = [len(re.findall(r'"WebSocket /ws/deployments/\d+/" \[accepted\]', log)) for log in logs]
    assert all(count > 0 for count in served) and sum(served) == 4, served
