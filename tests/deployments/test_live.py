"""The live path: websocket consumer, the real web server, real Celery worker, real Redis."""

import asyncio
import http.cookiejar
import json
import re
import urllib.request
from datetime import timedelta

import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.test import Client
from django.utils import timezone

from deployments import services
from deployments.models import DeploymentState, Item
from deployments.tasks import mark_late_steps
from warroom.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(deployment_id, user):
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/deployments/{deployment_id}/")
    comm.scope["user"] = user
    return comm


async def test_anonymous_connection_is_rejected(crew):
    deployment, _ = crew
    connected, code = await communicator(deployment.pk, AnonymousUser()).connect()
    assert (connected, code) == (False, 4401)


async def test_outsider_cannot_subscribe(crew):
    deployment, people = crew
    connected, code = await communicator(deployment.pk, people["outsider"]).connect()
    assert (connected, code) == (False, 4404)


async def test_unknown_deployment_looks_like_forbidden(crew):
    _, people = crew
    connected, code = await communicator(999999, people["qa"]).connect()
    assert (connected, code) == (False, 4404)


async def test_participant_sees_a_tick_with_a_sequence_number(crew):
    deployment, people = crew
    comm = communicator(deployment.pk, people["po"])
    connected, _ = await comm.connect()
    assert connected
    presence = await comm.receive_from(timeout=5)  # own arrival in the presence list
    assert 'id="presence-list"' in presence
    item = await sync_to_async(Item.objects.get)(deployment=deployment, text="Check 2.1")
    await sync_to_async(services.update_item)(item.pk, people["qa"], revision=item.revision, checked=True)
    message = await comm.receive_from(timeout=5)
    seq = int(re.search(r'id="live-seq"[^>]*data-seq="(\d+)"', message).group(1))
    assert seq >= 2  # presence push came first
    assert f'id="item-{item.pk}"' in message
    assert re.search(rf'id="cb-{item.pk}"[^>]*checked', message)
    await comm.disconnect()


async def test_a_removed_participant_is_disconnected_at_once(crew):
    """Removal closes their socket right away; they get no further push, not even before a ping."""
    deployment, people = crew
    comm = communicator(deployment.pk, people["po"])
    connected, _ = await comm.connect()
    assert connected
    await comm.receive_from(timeout=5)  # own arrival in the presence list
    await sync_to_async(services.remove_participant)(deployment, people["lead"], people["po"])
    while True:  # the people panel's push may come first; then the socket closes
        output = await comm.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            break
        assert "data-seq" in output.get("text", "")
    assert output["code"] == 4403
    item = await sync_to_async(Item.objects.get)(deployment=deployment, text="Check 2.1")
    await sync_to_async(services.update_item)(item.pk, people["qa"], revision=item.revision, checked=True)
    assert await comm.receive_nothing(timeout=0.5)


# --- the real web server + real Celery worker ----------------------------------------------------


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


class Browserless:
    """An HTTP client with a cookie jar, talking to the real server like a browser would."""

    def __init__(self, base_url, sessionid):
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.sessionid = sessionid

    def request(self, path, data=None, headers=None):
        req = urllib.request.Request(self.base_url + path, data=data, headers=headers or {})
        req.add_header("Cookie", f"sessionid={self.sessionid}" + "".join(f"; {c.name}={c.value}" for c in self.jar))
        return self.opener.open(req, timeout=10)

    def csrf_token(self, path):
        page = self.request(path).read().decode()
        return json.loads(re.search(r"hx-headers='([^']+)'", page).group(1))["X-CSRFToken"]


async def _ws_connect(base_url, deployment_id, sessionid):
    url = base_url.replace("http://", "ws://") + f"/ws/deployments/{deployment_id}/"
    return await websockets.connect(url, additional_headers={"Cookie": f"sessionid={sessionid}", "Origin": base_url})


async def _receive_until(ws, needle, timeout=10):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        message = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - asyncio.get_running_loop().time()))
        if needle in message:
            return message


async def test_http_tick_and_celery_task_reach_every_subscriber(crew, asgi_server, celery_worker):
    deployment, people = crew
    await sync_to_async(services.reanchor_t0)(
        deployment.pk, people["lead"], timezone.now() - timedelta(hours=3), reason="demo of a late start"
    )
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        await sync_to_async(services.change_state)(deployment.pk, people["lead"], state)
    po_session = await sync_to_async(_session_cookie)(people["po"])
    lead_session = await sync_to_async(_session_cookie)(people["lead"])
    qa_session = await sync_to_async(_session_cookie)(people["qa"])
    watchers = [await _ws_connect(asgi_server, deployment.pk, s) for s in (po_session, lead_session)]
    try:
        # 1. An HTTP action: the QA lead ticks a box through the real server.
        item = await sync_to_async(Item.objects.get)(deployment=deployment, text="Check 2.1")
        qa = Browserless(asgi_server, qa_session)
        token = await sync_to_async(qa.csrf_token)(f"/deployments/{deployment.pk}/")
        body = f"revision={item.revision}&checked=1".encode()
        response = await sync_to_async(qa.request)(
            f"/deployments/{deployment.pk}/items/{item.pk}/",
            body,
            {"X-CSRFToken": token, "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status == 204
        for ws in watchers:
            message = await _receive_until(ws, f'id="item-{item.pk}"')
            assert re.search(rf'id="cb-{item.pk}"[^>]*checked', message)
        # 2. A Celery task on the real worker: the late-step sweep publishes to the same group.
        await asyncio.get_running_loop().run_in_executor(None, mark_late_steps.delay)
        for ws in watchers:
            message = await _receive_until(ws, "is late")
            assert "Step 1" in message
    finally:
        for ws in watchers:
            await ws.close()


async def test_a_change_through_one_web_process_reaches_a_socket_held_by_another(crew, asgi_server, second_asgi_server):
    deployment, people = crew
    po_session = await sync_to_async(_session_cookie)(people["po"])
    qa_session = await sync_to_async(_session_cookie)(people["qa"])
    watcher = await _ws_connect(asgi_server, deployment.pk, po_session)  # held by process A
    try:
        item = await sync_to_async(Item.objects.get)(deployment=deployment, text="Check 2.1")
        qa = Browserless(second_asgi_server, qa_session)  # the tick goes through process B
        token = await sync_to_async(qa.csrf_token)(f"/deployments/{deployment.pk}/")
        response = await sync_to_async(qa.request)(
            f"/deployments/{deployment.pk}/items/{item.pk}/",
            f"revision={item.revision}&checked=1".encode(),
            {"X-CSRFToken": token, "HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status == 204
        message = await _receive_until(watcher, f'id="item-{item.pk}"')
        assert re.search(rf'id="cb-{item.pk}"[^>]*checked', message)
    finally:
        await watcher.close()


async def test_http_endpoints_refuse_without_csrf(crew, asgi_server):
    deployment, people = crew
    session = await sync_to_async(_session_cookie)(people["qa"])
    item = await sync_to_async(Item.objects.get)(deployment=deployment, text="Check 2.1")
    qa = Browserless(asgi_server, session)
    with pytest.raises(urllib.error.HTTPError) as caught:
        await sync_to_async(qa.request)(f"/deployments/{deployment.pk}/items/{item.pk}/", b"revision=0&checked=1")
    assert caught.value.code == 403
    await sync_to_async(item.refresh_from_db)()
    assert not item.checked


def _tick_both_in_one_transaction(lead, items):
    with transaction.atomic():
        for item in items:
            services.update_item(item.pk, lead, revision=item.revision, checked=True)


async def test_lines_ticked_together_reach_screens_as_one_push_showing_both(crew):
    """Two lines of two steps changed in one moment are one push (one render of progress,
    status and events) carrying both steps, both lines ticked, and the progress after both."""
    deployment, people = crew
    comm = communicator(deployment.pk, people["po"])
    connected, _ = await comm.connect()
    assert connected
    await comm.receive_from(timeout=5)  # own arrival in the presence list
    first, second = [await sync_to_async(Item.objects.get)(deployment=deployment, text=t) for t in ("Check 1.1", "Check 2.1")]
    assert first.step_id != second.step_id
    await sync_to_async(_tick_both_in_one_transaction)(people["lead"], [first, second])
    message = await comm.receive_from(timeout=5)
    for item in (first, second):
        assert f'id="step-{item.step_id}"' in message
        assert re.search(rf'id="cb-{item.pk}"[^>]*checked', message)
    assert message.count('id="live-seq"') == 1
    assert await comm.receive_nothing(timeout=0.5)  # nothing was left for a second push
    await comm.disconnect()
