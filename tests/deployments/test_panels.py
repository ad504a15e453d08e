"""The war room's panels come from the apps that own them (deployments.panels): each is placed
in its slot in order, and a push carries exactly what the page shows."""

import re

from django.test import Client

from approvals.models import Gate
from approvals.panels import render_approvals_push
from approvals.services import cast_vote
from comms.panels import render_comms_push
from deployments import panels
from deployments.models import DeploymentState
from deployments.services import change_state
from rollouts import controller
from rollouts.panels import render_rollout_push


def page_of(deployment, user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/deployments/{deployment.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, element_id: str) -> str:
    found = re.search(rf'<section id="{element_id}".*?</section>', html, re.S)
    assert found, f"no #{element_id} in the page"
    return found.group(0)


def as_on_the_page(fragment: str) -> str:
    """A pushed fragment, less the attribute that tells htmx to swap it in by id."""
    return fragment.replace('hx-swap-oob="true"', "")


def test_each_app_registers_its_panel_in_a_slot():
    placed = {slot: [p.name for p in ps] for slot, ps in panels.placed().items()}
    assert placed == {"main": ["incidents", "approvals", "rollout"], "side": ["comms"], "step": ["runs"]}
    assert panels.placed()["main"][1].ref == "approvals/panel.html#approvals"


def test_the_page_shows_the_panels_in_their_slots_in_order(crew):
    deployment, people = crew
    html = page_of(deployment, people["lead"])
    main, side = html.index('class="wr-main"'), html.index('class="wr-side"')
    where = {name: html.index(f'id="{name}"') for name in ("wr-incidents", "wr-approvals", "wr-rollout", "wr-status")}
    # Incidents first (worst news on top), then gates, then the rollout, then "Now".
    assert main < where["wr-incidents"] < where["wr-approvals"] < where["wr-rollout"] < where["wr-status"] < side
    # Communications in the aside, below the people, with its preview box after it.
    assert side < html.index('id="wr-people"') < html.index('id="wr-comms"') < html.index('id="comms-preview"')


def test_a_vote_pushes_the_approvals_panel_exactly_as_the_page_shows_it(crew):
    deployment, people = crew
    for state in (DeploymentState.SCHEDULED, DeploymentState.IN_PROGRESS):
        change_state(deployment.pk, people["lead"], state)
    gate = Gate.objects.get(deployment=deployment)
    cast_vote(gate.pk, people["po"], "go", reason="business ready")

    pushed = render_approvals_push(deployment.pk)[0]
    shown = section(page_of(deployment, people["lead"]), "wr-approvals")

    assert "business ready" in shown
    assert as_on_the_page(section(pushed, "wr-approvals")) == shown


def test_the_comms_and_rollout_pushes_match_the_page(crew):
    deployment, people = crew
    spec = {"router": "manual", "stages": [{"weight": 10, "hold": 60}, {"weight": 100, "hold": 0}], "gates": []}
    controller.define_plan(deployment, spec, actor=people["lead"])

    html = page_of(deployment, people["lead"])
    assert "Rollout: " in section(html, "wr-rollout")
    assert as_on_the_page(section(render_rollout_push(deployment.pk)[0], "wr-rollout")) == section(html, "wr-rollout")
    assert as_on_the_page(section(render_comms_push(deployment.pk)[0], "wr-comms")) == section(html, "wr-comms")
