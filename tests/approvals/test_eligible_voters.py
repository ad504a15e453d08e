"""Who votes on a gate: the same answer read from the database or from participants already loaded."""

import pytest

from approvals import services
from approvals.models import Gate, GateRule
from deployments import services as deployment_services
from deployments.models import DeploymentRole, Participant

pytestmark = pytest.mark.django_db


def test_voters_from_loaded_participants_match_the_database_and_the_roles_held(crew):
    deployment, people = crew
    roles = {r.name: r.pk for r in DeploymentRole.objects.filter(deployment=deployment)}
    # The DBA also takes QA Lead: one person, two voting roles. The observer and the lead hold none.
    deployment_services.set_participant(deployment, people["lead"], people["dba"], role_names=["DBA", "QA Lead"])
    gate = Gate.objects.get(deployment=deployment)
    services.configure_gate(gate.pk, people["lead"], voter_role_ids=[roles["QA Lead"], roles["DBA"]], rule=GateRule.UNANIMOUS)
    gate = Gate.objects.prefetch_related("voter_roles").get(pk=gate.pk)
    participants = list(Participant.objects.filter(deployment=deployment).prefetch_related("roles"))

    expected = {people["qa"].pk: {roles["QA Lead"]}, people["dba"].pk: {roles["DBA"], roles["QA Lead"]}}
    assert services.eligible_voters(gate) == expected
    assert services.eligible_voters(gate, participants=participants) == expected
