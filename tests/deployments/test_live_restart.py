"""Pushes resume by themselves when the Redis behind the channel layer restarts.

A real redis-server serves as the channel layer; a real consumer holds a socket; the
process's publisher thread (which keeps its connection) sends. The test stops Redis, pushes
into the outage (the push is lost, and logged) and starts Redis again on the same port. The
socket that was open is not left silently dead: either its subscription comes back and the
next pushes reach it, or its consumer ends, so the server closes it and the page reconnects
and re-fetches the board (warroom.js). A socket opened after the restart gets the next
pushes from the same publisher with no hand work.
"""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from redis.exceptions import ConnectionError as RedisConnectionError

from deployments import live
from tests.factories import make_deployment, make_user
from tests.rollouts.test_queue_outage import Broker
from warroom.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def layer_redis(tmp_path, settings):
    broker = Broker(tmp_path)
    broker.start()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": settings.CHANNEL_LAYERS["default"]["BACKEND"],
            "CONFIG": {
                "hosts": [
                    {**settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0], "address": f"redis://127.0.0.1:{broker.port}/0"}
                ],
                "prefix": "restart-test",
            },
        }
    }
    channel_layers.backends.clear()  # built anew from these settings
    yield broker
    if broker.proc.poll() is None:
        broker.stop()
    channel_layers.backends.clear()


@pytest.fixture
def watched(transactional_db):
    lead = make_user("lead")
    return make_deployment(lead=lead), lead


def push(deployment_id: int, text: str) -> None:
    live.publisher.submit(deployment_id, lambda: [f"<p>{text}</p>"])
    live.publisher.flush()


async def received(comm, text: str, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            message = await comm.receive_from(timeout=0.5)
        except TimeoutError:
            continue
        if text in message:
            return True
    return False


async def test_pushes_reach_an_open_socket_again_after_the_layer_redis_restarts(layer_redis, watched):
    deployment, lead = watched
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/deployments/{deployment.pk}/")
    comm.scope["user"] = lead
    connected, _ = await comm.connect()
    assert connected
    await sync_to_async(push)(deployment.pk, "before the restart")
    assert await received(comm, "before the restart", within=10)

    layer_redis.stop()
    await sync_to_async(push)(deployment.pk, "during the outage")  # lost: nobody can carry it (logged)
    layer_redis.start()

    # The open socket: pushes reach it again, or it is closed (never open and silent).
    old_socket = None
    deadline = time.monotonic() + 30
    while old_socket is None and time.monotonic() < deadline:
        if comm.future.done():
            old_socket = "closed"
            break
        await sync_to_async(push)(deployment.pk, "after the restart")
        try:
            if await received(comm, "after the restart", within=1):
                old_socket = "live again"
        except (asyncio.CancelledError, RedisConnectionError):  # the consumer ended while we listened
            assert comm.future.done()
            old_socket = "closed"
    assert old_socket is not None, "a socket that lost its channel layer stayed open, silently"

    again = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/deployments/{deployment.pk}/")
    again.scope["user"] = lead
    connected, _ = await again.connect()
    assert connected
    arrived = False
    deadline = time.monotonic() + 30
    while not arrived and time.monotonic() < deadline:
        await sync_to_async(push)(deployment.pk, "after the restart")
        arrived = await received(again, "after the restart", within=1)
    assert arrived, "no push reached a socket after Redis came back"
    await again.disconnect()
