"""A decided rollback vote (the gate a SEV1 opens) shows on the incident, and reaches every open
screen's incidents panel live."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from approvals.services import cast_vote
from deployments import live
from deployments import services as deployment_services
from incidents import services
from incidents.panels import render_incidents_push
from warroom.routing import websocket_urlpatterns


async def _receive_until(comm, needle, timeout=10):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        message = await comm.receive_from(timeout=max(deadline - loop.time(), 0.1))
        if needle in message:
            return message
    raise AssertionError(f"no push with {needle!r}")


@pytest.mark.django_db(transaction=True)
async def test_a_decided_rollback_vote_is_pushed_to_the_incidents_panel(crew):
    deployment, people = crew
    incident = await sync_to_async(services.raise_incident)(deployment.pk, people["qa"], severity="sev1", title="Checkout down")
    await sync_to_async(live.publisher.flush)()  # the raise's own push is out before we listen

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/deployments/{deployment.pk}/")
    comm.scope["user"] = people["observer"]
    connected, _ = await comm.connect()
    assert connected
    # The product owner decides the rollback vote (the decider rule): a NO-GO.
    await sync_to_async(cast_vote)(incident.rollback_gate_id, people["po"], "no_go", reason="error rate 30 %")
    message = await _receive_until(comm, 'id="wr-incidents"')
    panel = message[message.index('id="wr-incidents"') :]
    assert "Rollback vote:</strong>" in panel and "decided NO-GO" in panel
    assert "open — vote in the gate panel" not in panel
    assert "Rollback vote decided NO-GO" in panel  # the incident's timeline says so too
    await comm.disconnect()


@pytest.mark.parametrize("choice", ["go", "no_go"])
def test_the_incident_says_how_its_rollback_vote_was_decided(crew, choice):
    deployment, people = crew
    incident = services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")
    assert "Rollback vote:</strong> <a" in render_incidents_push(deployment.pk)[0]
    assert "open — vote in the gate panel" in render_incidents_push(deployment.pk)[0]
    cast_vote(incident.rollback_gate.pk, people["po"], choice, reason="decided by the owner")  # the decider
    panel = render_incidents_push(deployment.pk)[0]
    word = {"go": "GO", "no_go": "NO-GO"}[choice]
    assert f"decided {word}</a>" in panel and "open — vote in the gate panel" not in panel
    assert f"Rollback vote decided {word}" in incident.updates.last().text


def test_a_rollback_vote_cancelled_by_the_end_of_the_deployment_is_not_shown_open(crew):
    deployment, people = crew
    services.raise_incident(deployment.pk, people["qa"], severity="sev1", title="Checkout down")
    deployment_services.change_state(deployment.pk, people["lead"], "aborted", reason="called off")
    panel = render_incidents_push(deployment.pk)[0]
    assert "Rollback vote:</strong>" in panel and "cancelled undecided" in panel
    assert "open — vote in the gate panel" not in panel
