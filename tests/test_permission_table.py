"""The permission table: every URL pattern × every persona, with the status the rules
expect and, for refused changes, proof that nothing changed.

The expectations are written from the rules (README "Who may do what", issue 13 §2 and
§3), not read off the code:

- Only participants see a deployment. Everyone else who is logged in — an outsider,
  the lead of another deployment, staff — gets the same 404 as for an unknown id.
- Anonymous visitors (and a pipeline token, which is no login) are sent to the login
  page (302) by every page and htmx endpoint: that is the code's convention
  (``login_required``). The JSON API answers 401 to anything without its token.
- Within a deployment: items are changed by holders of their step's role or the lead
  (undo: whoever did it, or the lead); the lead manages people, T-0, state, gates,
  tokens, comms, the status page and the rollout plan; voters are the gate's roles;
  an approval is given by the role it names (one that names no role: the lead) and
  withdrawn by its giver or the lead; incidents and the review are written by role
  holders and the lead; step runs and rollouts are operated by the step's role or the
  lead; observers read. A refused change is a 403.
- Runbooks are read by release managers (the lead personas are in that group) and
  runbook editors (staff may edit); creating a deployment needs
  ``deployments.add_deployment`` (release managers).
- The pipeline token reads gates, waits on them, and ticks plain check items; nothing
  else (issue 13 §2). Refused API changes answer 409 (README) or 403.
- A finished deployment is read-only (issue 13 §3), except its review and sign-offs.
- Demo endpoints exist only in the demo (issue 13 §4); the test settings are not it.

A row the code does not yet honour is marked ``xfail(strict=True)`` with what the code
does, so the row turns red once the code is fixed and the mark can go.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from approvals import services as approval_services
from approvals.models import ApiToken, Gate, RequiredApproval, Vote
from checklists.models import RunbookEdit, RunbookVersion, TemplateItem, TemplatePhase, TemplateStep
from comms import services as comms_services
from comms.models import Channel, Message, MessageTemplate, ScheduledSend, StatusPage
from deployments import services
from deployments.models import Deployment, DeploymentRole, EmergencyContact, Event, Item, Participant, Step
from deployments.permissions import revoke_participation
from incidents import review as review_services
from incidents import services as incident_services
from incidents.models import ActionItem, Incident, Review
from reports.models import JobState, ReportJob, SignOff
from rollouts import controller, runs
from rollouts.models import MetricReading, RolloutPlan, Target, TargetBinding, TaskLogLine, TaskRun
from rollouts.setup import save_target
from tests.factories import PASSWORD, make_deployment, make_user, make_version, staff_deployment
from warroom.routing import websocket_urlpatterns

# --- personas --------------------------------------------------------------------------------

ANONYMOUS, TOKEN = "anonymous", "token"
ROLE_HOLDERS = ("po", "qa", "devops", "dba")
PARTICIPANTS = ("observer", *ROLE_HOLDERS, "lead")
OUTSIDERS = ("outsider", "other_lead", "staff")
PERSONAS = (ANONYMOUS, "outsider", "observer", *ROLE_HOLDERS, "lead", "other_lead", "staff", TOKEN)
LOGGED_IN = (*PARTICIPANTS, *OUTSIDERS)
RUNBOOK_READERS = ("lead", "other_lead", "staff")  # release managers, and staff (editors)
RUNBOOK_EDITORS = ("staff",)
CREATORS = ("lead", "other_lead")  # release managers hold deployments.add_deployment
REFUSED_FINISHED = frozenset({400, 409})  # "refused with a plain message"
REFUSED_ANY = frozenset({400, 403, 409})  # no right, and finished anyway: either refusal, in words
REFUSED_BY_API = frozenset({403, 409})  # README: refused changes 409; a forbidden action 403

# --- the world a row is checked in -----------------------------------------------------------


def _version_state(version_id):
    """Everything the runbook editor can change in one version."""
    version = RunbookVersion.objects.get(pk=version_id)
    return (
        version.title,
        list(TemplatePhase.objects.filter(version=version).order_by("pk").values_list("title", "position")),
        list(
            TemplateStep.objects.filter(phase__version=version)
            .order_by("pk")
            .values_list("title", "position", "phase_id", "role_id", "offset_minutes", "duration_min_minutes", "is_gate")
        ),
        list(TemplateItem.objects.filter(step__phase__version=version).order_by("pk").values_list("text", "position", "step_id")),
        version.roles.count(),
    )


def _build_world():
    """The crew fixture's deployment and personas (built by the same factories), a second
    deployment with its own lead, staff, a pipeline token, an approval for the DBA, one for
    the lead, and one tied to a checklist line; plus a runbook version nobody deploys, for
    the editor's rows."""
    lead = make_user("lead")
    deployment = make_deployment(lead=lead)
    people = staff_deployment(deployment, lead)
    other_lead = make_user("other_lead")
    other = make_deployment(lead=other_lead, version=make_version(name="Other runbook"))
    staff = make_user("staff")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    users = {**people, "other_lead": other_lead, "staff": staff}
    roles = {r.name: r for r in DeploymentRole.objects.filter(deployment=deployment)}
    items = {i.text: i for i in Item.objects.filter(deployment=deployment)}
    steps = {s.title: s for s in Step.objects.filter(deployment=deployment)}
    approval_dba = RequiredApproval.objects.create(deployment=deployment, label="Security approval", role=roles["DBA"])
    approval_lead = RequiredApproval.objects.create(deployment=deployment, label="Change board approval", position=1)
    approval_line = RequiredApproval.objects.create(
        deployment=deployment, label="Check 2.3", role=roles["QA Lead"], position=2, item=items["Check 2.3"]
    )
    _, raw_token = approval_services.create_api_token(deployment, lead, name="ci")
    editable = make_version(name="Editable runbook")
    TemplatePhase.objects.create(version=editable, position=1, title="Aftercare")
    return SimpleNamespace(
        d=deployment,
        other=other,
        users=users,
        roles=roles,
        items=items,
        steps=steps,
        gate=Gate.objects.get(deployment=deployment),
        approval_dba=approval_dba,
        approval_lead=approval_lead,
        approval_line=approval_line,
        token=raw_token,
        editable=editable,
    )


@pytest.fixture(scope="class")
def world_base(django_db_setup, django_db_blocker):
    """Built once for the matrix class inside a transaction that is rolled back at the end (like
    TestCase.setUpTestData); each test runs in a savepoint inside it, so nothing one row
    does is seen by the next."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            base = _build_world()
        except BaseException:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            raise
    yield base
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture
def world(world_base, db):
    w = SimpleNamespace(**vars(world_base))
    w.d.refresh_from_db()
    w.obj = SimpleNamespace()  # what a row's set-up made
    w.cleanups = []  # files are not rolled back with the database
    yield w
    for cleanup in w.cleanups:
        cleanup()


def events(w) -> int:
    return Event.objects.filter(deployment=w.d).count()


def finish(w):
    Deployment.objects.filter(pk=w.d.pk).update(
        state="completed", started_at=timezone.now() - timedelta(hours=1), finished_at=timezone.now()
    )


def start(w):
    Deployment.objects.filter(pk=w.d.pk).update(state="in_progress", started_at=timezone.now())


# --- set-ups for rows that need an object to act on ---------------------------------------------


def with_target(w):
    step = w.steps["Step 1"]
    Step.objects.filter(pk=step.pk).update(
        action="smoke", action_config={"action": "smoke", "checks": [{"type": "http", "name": "health", "url": "/healthz"}]}
    )
    target = save_target(Target(name="table-target", base_url="http://127.0.0.1:9"))
    TargetBinding.objects.create(deployment=w.d, target=target)


def with_run(w):
    with_target(w)
    w.obj.run = runs.start_run(w.steps["Step 1"].pk, w.users["lead"])
    TaskLogLine.objects.create(run=w.obj.run, seq=1, text="hello")


PLAN = {
    "strategy": "canary",
    "router": "manual",
    "sample": 30,
    "stages": [{"weight": 5, "hold": "5m"}, {"weight": 50, "hold": "5m"}, {"weight": 100, "hold": 0}],
    "gates": [{"name": "errors", "source": "manual", "threshold": 1, "unit": "%"}],
}


def with_plan(state="draft", *, running_deployment=True):
    def setup(w):
        if running_deployment:
            start(w)
        w.obj.plan = controller.define_plan(w.d, PLAN, step=w.steps["Step 2"], actor=w.users["lead"])
        RolloutPlan.objects.filter(pk=w.obj.plan.pk).update(state=state, stage_index=-1 if state == "draft" else 0)
        w.obj.metric_gate = w.obj.plan.gates.get()

    return setup


def plan_form_post(**fields):
    """The rollout plan form's fields for PLAN (forms.RolloutPlanEditor), as a browser posts them."""
    data = {"strategy": PLAN["strategy"], "router": PLAN["router"], "sample": PLAN["sample"], **fields}
    data |= {"stage-TOTAL_FORMS": len(PLAN["stages"]), "stage-INITIAL_FORMS": 0}
    for index, stage in enumerate(PLAN["stages"]):
        data |= {f"stage-{index}-weight": stage["weight"], f"stage-{index}-hold": 5 if stage["hold"] else 0}
    data |= {"gate-TOTAL_FORMS": len(PLAN["gates"]), "gate-INITIAL_FORMS": 0}
    for index, gate in enumerate(PLAN["gates"]):
        data |= {f"gate-{index}-{key}": value for key, value in gate.items()}
        data |= {f"gate-{index}-comparator": "<", f"gate-{index}-consecutive_bad": 1}
    return data


def runbook_rollout_state(w):
    steps = TemplateStep.objects.filter(phase__version=w.editable).order_by("pk")
    return list(steps.values_list("action", "action_config")), RunbookEdit.objects.filter(version=w.editable).count()


def plan_state(w):
    plan = RolloutPlan.objects.get(pk=w.obj.plan.pk)
    return events(w), plan.state, plan.stage_index, plan.applied_weight, MetricReading.objects.filter(gate__plan=plan).count()


def with_channel(w):
    w.obj.channel = comms_services.save_channel(
        w.d, w.users["lead"], name="Ops mail", transport="email", recipients="ops@example.com"
    )


def with_template(w):
    with_channel(w)
    w.obj.template = comms_services.save_template(
        w.d,
        w.users["lead"],
        name="Go-live",
        subject="Live",
        body="We are live.",
        offset_minutes=30,
        channel_ids=[w.obj.channel.pk],
        sender_role_id=w.roles["Product Owner"].pk,
    )


def with_scheduled(w):
    with_template(w)
    w.obj.scheduled = comms_services.schedule_template(w.obj.template.pk, w.users["lead"])


def with_status_page(w):
    w.obj.page = comms_services.set_status_page(w.d, w.users["lead"], "enable")


def comms_state(w):
    return (
        events(w),
        Channel.objects.filter(deployment=w.d).count(),
        list(MessageTemplate.objects.filter(deployment=w.d).values_list("pk", "name", "subject")),
        Message.objects.filter(deployment=w.d).count(),
        list(ScheduledSend.objects.filter(deployment=w.d).values_list("pk", "state")),
        list(StatusPage.objects.filter(deployment=w.d).values_list("enabled", "token")),
    )


def with_incident(w):
    w.obj.incident = incident_services.raise_incident(w.d.pk, w.users["lead"], severity="sev3", title="Slow logins")


def with_paged_incident(w):
    with_incident(w)
    Incident.objects.filter(pk=w.obj.incident.pk).update(next_escalation_at=timezone.now() + timedelta(minutes=5))


def incident_state(w):
    return events(w), list(Incident.objects.filter(deployment=w.d).values_list("pk", "status", "severity", "acknowledged_at"))


def with_action_item(w):
    finish(w)
    w.obj.action_item = review_services.add_action_item(
        w.d.pk, w.users["lead"], text="Write the postmortem", owner_id=None, due_date=None
    )


def review_state(w):
    review = Review.objects.filter(deployment=w.d).values_list("notes", "lessons_learned", "follow_up_status").first()
    return events(w), review, list(ActionItem.objects.filter(review__deployment=w.d).values_list("pk", "text", "status"))


def with_job(state=JobState.QUEUED):
    def setup(w):
        job = ReportJob.objects.create(deployment=w.d, requested_by=w.users["lead"], state=state)
        if state == JobState.DONE:
            job.file.save(f"{job.pk}-report.pdf", ContentFile(b"%PDF-1.7\n%%EOF\n"))
            w.cleanups.append(lambda: job.file.delete(save=False))
        w.obj.job = job

    return setup


def with_given_dba_approval(w):
    approval_services.give_approval(w.approval_dba.pk, w.users["dba"], statement="Reviewed")


def with_added_gate_finished(w):
    """A gate the lead added (no runbook line), QA votes, still open when the deployment finished."""
    w.obj.gate = approval_services.add_gate(w.d, w.users["lead"], title="Extra check", voter_role_ids=[w.roles["QA Lead"].pk])
    finish(w)


def approvals_state(w):
    return events(w), list(
        RequiredApproval.objects.filter(deployment=w.d).order_by("pk").values_list("approved_by_id", "statement")
    )


def gate_state(w):
    gates = Gate.objects.filter(deployment=w.d).order_by("pk")
    return (
        events(w),
        list(gates.values_list("pk", "state", "decision", "rule", "quorum", "decider_role_id")),
        [sorted(g.voter_roles.values_list("pk", flat=True)) for g in gates],
        list(Vote.objects.filter(gate__deployment=w.d).values_list("voter_id", "choice", "stale")),
    )


def item_state(*texts):
    def snapshot(w):
        return events(w), list(
            Item.objects.filter(deployment=w.d, text__in=texts)
            .order_by("pk")
            .values_list("checked", "value", "note", "done_by_id")
        )

    return snapshot


def with_done_item(w):
    services.update_item(w.items["Check 1.2"].pk, w.users["devops"], revision=None, checked=True)


def deployment_state(w):
    d = Deployment.objects.get(pk=w.d.pk)
    return events(w), d.state, d.planned_t0, d.window_start


def people_state(w):
    return (
        events(w),
        list(Participant.objects.filter(deployment=w.d).order_by("pk").values_list("user_id", "is_lead")),
        EmergencyContact.objects.filter(deployment=w.d).count(),
    )


def with_newcomer(w):
    make_user("newcomer")


# --- the table ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One URL pattern (or one variant of it) and what each persona gets."""

    key: str  # the test id
    name: str  # the URL pattern's name
    method: str
    expect: dict  # persona → status, or a frozenset of acceptable statuses
    allowed: tuple = ()  # personas for whom the request is permitted (the rest are refused)
    kwargs: Callable = lambda w: {}
    data: Callable | None = None
    setup: Callable | None = None
    state: Callable | None = None  # snapshot taken before and after a refused change
    xfail: dict = field(default_factory=dict)  # persona → what the code does instead
    json_body: bool = False
    changes: bool = True  # a permitted request changes the snapshot (proves the payload is valid)


def deployment_row(key, name, method, *, ok, allowed=PARTICIPANTS, refused=403, **extra):
    """Inside one deployment: participants as the rule says, everyone else 404, anonymous to login."""
    expect = {ANONYMOUS: 302, TOKEN: 302}
    expect.update(dict.fromkeys(OUTSIDERS, 404))
    for persona in PARTICIPANTS:
        expect[persona] = ok if persona in allowed else refused
    return Row(key, name, method, expect, allowed=tuple(allowed), **extra)


def global_row(key, name, method, *, ok, allowed=LOGGED_IN, refused=403, **extra):
    """Outside any deployment: a login and, maybe, a model permission."""
    expect = {ANONYMOUS: 302, TOKEN: 302}
    for persona in LOGGED_IN:
        expect[persona] = ok if persona in allowed else refused
    return Row(key, name, method, expect, allowed=tuple(allowed), **extra)


def api_row(key, name, method, *, ok, token_allowed=True, **extra):
    """The pipeline API: its token, nothing else; a session is no token."""
    expect = dict.fromkeys(PERSONAS, 401)
    expect[TOKEN] = ok if token_allowed else REFUSED_BY_API
    return Row(key, name, method, expect, allowed=(TOKEN,) if token_allowed else (), **extra)


def public_row(key, name, method, *, ok, **extra):
    return Row(key, name, method, dict.fromkeys(PERSONAS, ok), allowed=PERSONAS, **extra)


def refused_row(key, name, method, *, would_be_allowed, status, **extra):
    """A change nobody may make here: those the role rules would otherwise allow get
    ``status`` (the reason in words), the others the usual 403."""
    row = deployment_row(key, name, method, ok=status, allowed=would_be_allowed, **extra)
    row.allowed = ()
    return row


def finished_row(key, name, method, *, would_be_allowed, **extra):
    """A change on a finished deployment (read-only, issue 13 §3)."""
    extra.setdefault("refused", REFUSED_ANY)
    return refused_row(key, name, method, would_be_allowed=would_be_allowed, status=REFUSED_FINISHED, **extra)


def pk(w):
    return {"pk": w.d.pk}


def in_deployment(**more):
    return lambda w: {"pk": w.d.pk, **{k: v(w) for k, v in more.items()}}


def version_pk(w):
    return {"pk": w.editable.pk}


def phase_pk(w):
    return {"pk": w.editable.phases.order_by("position").first().pk}


def step_pk(w):
    return {"pk": TemplateStep.objects.filter(phase__version=w.editable).order_by("position").first().pk}


def item_pk(w):
    return {"pk": TemplateItem.objects.filter(step__phase__version=w.editable).order_by("pk").first().pk}


def editor_state(w):
    return _version_state(w.editable.pk)


def editor_row(key, name, *, kwargs, data):
    return global_row(key, name, "POST", ok=200, allowed=RUNBOOK_EDITORS, kwargs=kwargs, data=data, state=editor_state)


RUNBOOK_MD = b"# Table runbook\n\n## Phase 1\n\n### Step 1.1: Check\n\n- [ ] Backup taken\n"


ROWS: list[Row] = [
    # --- the project's own pages ---
    global_row("dashboard", "dashboard", "GET", ok=200),
    public_row("healthz", "healthz", "GET", ok=frozenset({200, 503})),
    public_row("favicon", "favicon", "GET", ok=frozenset({301, 302})),
    Row(
        "login",
        "login",
        "GET",
        {**dict.fromkeys(LOGGED_IN, 302), ANONYMOUS: 200, TOKEN: 200},
        allowed=PERSONAS,
    ),
    Row("logout", "logout", "POST", dict.fromkeys(PERSONAS, 302), allowed=PERSONAS, data=lambda w: {}),
    global_row("password_change", "password_change", "GET", ok=200),
    global_row(
        "password_change[POST]",
        "password_change",
        "POST",
        ok=302,
        data=lambda w: {
            "old_password": PASSWORD,
            "new_password1": "a fresh long passphrase 42",
            "new_password2": "a fresh long passphrase 42",
        },
        state=lambda w: sorted(get_user_model().objects.values_list("pk", "password")),
    ),
    global_row("password_change_done", "password_change_done", "GET", ok=200),
    # --- deployments ---
    global_row("deployments:create", "deployments:create", "GET", ok=200, allowed=CREATORS),
    global_row(
        "deployments:create[POST]",
        "deployments:create",
        "POST",
        ok=302,
        allowed=CREATORS,
        data=lambda w: {
            "runbook_version": w.editable.pk,
            "name": "Table release",
            "service": "payments",
            "version_label": "2.0",
            "environment": "staging",
            "planned_t0": (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"),
            "timezone": "UTC",
        },
        state=lambda w: (Deployment.objects.count(), Event.objects.count()),
    ),
    deployment_row("deployments:warroom", "deployments:warroom", "GET", ok=200, kwargs=pk),
    deployment_row(
        "deployments:warroom[unknown id]",
        "deployments:warroom",
        "GET",
        ok=404,  # unknown and forbidden look the same
        kwargs=lambda w: {"pk": Deployment.objects.order_by("-pk").first().pk + 1000},
    ),
    deployment_row("deployments:board", "deployments:board", "GET", ok=200, kwargs=pk),
    # The TV and the phone view: what the war room shows, to the same people.
    deployment_row("deployments:tv", "deployments:tv", "GET", ok=200, kwargs=pk),
    deployment_row("deployments:tv_board", "deployments:tv_board", "GET", ok=200, kwargs=pk),
    deployment_row("deployments:me", "deployments:me", "GET", ok=200, kwargs=pk),
    deployment_row("deployments:me_board", "deployments:me_board", "GET", ok=200, kwargs=pk),
    deployment_row("deployments:events", "deployments:events", "GET", ok=200, kwargs=pk),
    # Exports of the log: whoever may read the page may download what it shows.
    deployment_row("deployments:events_csv", "deployments:events_csv", "GET", ok=200, kwargs=pk),
    deployment_row("deployments:events_json", "deployments:events_json", "GET", ok=200, kwargs=pk),
    deployment_row(
        "deployments:item[check]",
        "deployments:item",
        "POST",
        ok=204,
        allowed=("devops", "lead"),
        kwargs=in_deployment(item_pk=lambda w: w.items["Check 1.1"].pk),
        data=lambda w: {"checked": "1", "note": "done by hand"},
        state=item_state("Check 1.1"),
    ),
    deployment_row(
        "deployments:item[field]",
        "deployments:item",
        "POST",
        ok=204,
        allowed=("po", "lead"),
        kwargs=in_deployment(item_pk=lambda w: w.items["Time Completed"].pk),
        data=lambda w: {"value": "10:42"},
        state=item_state("Time Completed"),
    ),
    deployment_row(
        "deployments:item[undo]",
        "deployments:item",
        "POST",
        ok=204,
        allowed=("devops", "lead"),
        setup=with_done_item,
        kwargs=in_deployment(item_pk=lambda w: w.items["Check 1.2"].pk),
        data=lambda w: {"checked": "0"},
        state=item_state("Check 1.2"),
    ),
    refused_row(
        "deployments:item[gate line]",
        "deployments:item",
        "POST",
        status=frozenset({400, 403}),  # a gate is decided by its vote: refused even to its step's role and the lead
        would_be_allowed=("po", "lead"),
        kwargs=in_deployment(item_pk=lambda w: w.items["Decision"].pk),
        data=lambda w: {"value": "GO"},
        state=item_state("Decision"),
    ),
    finished_row(
        "deployments:item[finished]",
        "deployments:item",
        "POST",
        would_be_allowed=("devops", "lead"),
        setup=finish,
        kwargs=in_deployment(item_pk=lambda w: w.items["Check 1.1"].pk),
        data=lambda w: {"checked": "1"},
        state=item_state("Check 1.1"),
    ),
    deployment_row(
        "deployments:state",
        "deployments:state",
        "POST",
        ok=204,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {"state": "scheduled"},
        state=deployment_state,
    ),
    deployment_row(
        "deployments:reanchor",
        "deployments:reanchor",
        "POST",
        ok=204,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {
            "t0": (timezone.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
            "timezone": "UTC",
            "reason": "The start slipped",
        },
        state=deployment_state,
    ),
    finished_row(
        "deployments:reanchor[finished]",
        "deployments:reanchor",
        "POST",
        would_be_allowed=("lead",),
        setup=finish,
        kwargs=pk,
        data=lambda w: {
            "t0": (timezone.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
            "timezone": "UTC",
            "reason": "Too late",
        },
        state=deployment_state,
    ),
    deployment_row("deployments:people", "deployments:people", "GET", ok=200, kwargs=pk),
    deployment_row(
        "deployments:people[add]",
        "deployments:people",
        "POST",
        ok=302,
        allowed=("lead",),
        setup=with_newcomer,
        kwargs=pk,
        data=lambda w: {"p-username": "newcomer", "p-roles": ["QA Lead"]},
        state=people_state,
    ),
    deployment_row(
        "deployments:people[remove]",
        "deployments:people",
        "POST",
        ok=302,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {"remove": str(w.users["observer"].pk)},
        state=people_state,
    ),
    deployment_row(
        "deployments:people[contact]",
        "deployments:people",
        "POST",
        ok=302,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {"add_contact": "1", "c-role": "", "c-level": "1", "c-name": "Duty phone", "c-phone": "+49 30 1234"},
        state=people_state,
    ),
    # --- approvals and gates ---
    deployment_row(
        "approvals:give[role]",
        "approvals:give",
        "POST",
        ok=204,
        allowed=("dba",),
        kwargs=in_deployment(approval_pk=lambda w: w.approval_dba.pk),
        data=lambda w: {"statement": "Security review passed"},
        state=approvals_state,
    ),
    deployment_row(
        "approvals:give[no role]",
        "approvals:give",
        "POST",
        ok=204,
        allowed=("lead",),
        kwargs=in_deployment(approval_pk=lambda w: w.approval_lead.pk),
        data=lambda w: {"statement": "Change board agreed"},
        state=approvals_state,
    ),
    finished_row(
        "approvals:give[finished]",
        "approvals:give",
        "POST",
        would_be_allowed=("dba",),
        setup=finish,
        kwargs=in_deployment(approval_pk=lambda w: w.approval_dba.pk),
        data=lambda w: {"statement": "Too late"},
        state=approvals_state,
    ),
    deployment_row(
        "approvals:withdraw",
        "approvals:withdraw",
        "POST",
        ok=204,
        allowed=("dba", "lead"),
        setup=with_given_dba_approval,
        kwargs=in_deployment(approval_pk=lambda w: w.approval_dba.pk),
        data=lambda w: {"reason": "New findings"},
        state=approvals_state,
    ),
    deployment_row(
        "approvals:vote",
        "approvals:vote",
        "POST",
        ok=204,
        allowed=ROLE_HOLDERS,  # the runbook's gate: every role votes
        kwargs=in_deployment(gate_pk=lambda w: w.gate.pk),
        data=lambda w: {"choice": "go"},
        state=gate_state,
    ),
    finished_row(
        "approvals:vote[finished]",
        "approvals:vote",
        "POST",
        would_be_allowed=ROLE_HOLDERS,
        setup=finish,
        kwargs=in_deployment(gate_pk=lambda w: w.gate.pk),
        data=lambda w: {"choice": "go"},
        state=gate_state,
    ),
    deployment_row(
        "approvals:close",
        "approvals:close",
        "POST",
        ok=204,
        allowed=("lead",),
        kwargs=in_deployment(gate_pk=lambda w: w.gate.pk),
        data=lambda w: {"decision": "go", "reason": "Everyone agreed on the call"},
        state=gate_state,
    ),
    finished_row(
        "approvals:close[finished]",
        "approvals:close",
        "POST",
        would_be_allowed=("lead",),
        setup=finish,
        kwargs=in_deployment(gate_pk=lambda w: w.gate.pk),
        data=lambda w: {"decision": "go", "reason": "Late decision"},
        state=gate_state,
    ),
    finished_row(
        "approvals:close[finished, added gate]",
        "approvals:close",
        "POST",
        would_be_allowed=("lead",),
        setup=with_added_gate_finished,
        kwargs=in_deployment(gate_pk=lambda w: w.obj.gate.pk),
        data=lambda w: {"decision": "go", "reason": "Late decision"},
        state=gate_state,
    ),
    finished_row(
        "approvals:vote[finished, added gate]",
        "approvals:vote",
        "POST",
        would_be_allowed=("qa",),
        setup=with_added_gate_finished,
        kwargs=in_deployment(gate_pk=lambda w: w.obj.gate.pk),
        data=lambda w: {"choice": "go"},
        state=gate_state,
    ),
    deployment_row("approvals:gate", "approvals:gate", "GET", ok=200, kwargs=in_deployment(gate_pk=lambda w: w.gate.pk)),
    deployment_row(
        "approvals:gate[POST]",
        "approvals:gate",
        "POST",
        ok=302,
        allowed=("lead",),
        kwargs=in_deployment(gate_pk=lambda w: w.gate.pk),
        data=lambda w: {"rule": "unanimous", "voter_roles": [str(w.roles["QA Lead"].pk), str(w.roles["Product Owner"].pk)]},
        state=gate_state,
    ),
    deployment_row("approvals:gate_new", "approvals:gate_new", "GET", ok=200, kwargs=pk),
    deployment_row(
        "approvals:gate_new[POST]",
        "approvals:gate_new",
        "POST",
        ok=302,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {"title": "Extra gate", "rule": "unanimous", "voter_roles": [str(w.roles["QA Lead"].pk)]},
        state=gate_state,
    ),
    deployment_row("approvals:tokens", "approvals:tokens", "GET", ok=200, allowed=("lead",), kwargs=pk),
    deployment_row(
        "approvals:tokens[create]",
        "approvals:tokens",
        "POST",
        ok=200,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {"name": "deploy-bot"},
        state=lambda w: (events(w), list(ApiToken.objects.filter(deployment=w.d).values_list("pk", "revoked_at"))),
    ),
    deployment_row(
        "approvals:tokens[revoke]",
        "approvals:tokens",
        "POST",
        ok=200,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {"revoke": str(ApiToken.objects.get(deployment=w.d).pk)},
        state=lambda w: (events(w), list(ApiToken.objects.filter(deployment=w.d).values_list("pk", "revoked_at"))),
    ),
    # --- the pipeline API ---
    api_row("approvals:api_gates", "approvals:api_gates", "GET", ok=200, kwargs=pk),
    api_row("approvals:api_gate", "approvals:api_gate", "GET", ok=200, kwargs=in_deployment(gate_pk=lambda w: w.gate.pk)),
    api_row(
        "approvals:api_item_done[check]",
        "approvals:api_item_done",
        "POST",
        ok=200,
        kwargs=in_deployment(item_pk=lambda w: w.items["Check 1.1"].pk),
        data=lambda w: {"note": "pipeline #812"},
        json_body=True,
        state=item_state("Check 1.1"),
    ),
    api_row(
        "approvals:api_item_done[gate line]",
        "approvals:api_item_done",
        "POST",
        ok=None,
        token_allowed=False,
        kwargs=in_deployment(item_pk=lambda w: w.items["Decision"].pk),
        data=lambda w: {"value": "GO"},
        json_body=True,
        state=lambda w: (*item_state("Decision")(w), gate_state(w)),
    ),
    api_row(
        "approvals:api_item_done[approval line]",
        "approvals:api_item_done",
        "POST",
        ok=None,
        token_allowed=False,
        kwargs=in_deployment(item_pk=lambda w: w.items["Check 2.3"].pk),
        data=lambda w: {},
        json_body=True,
        state=lambda w: (*item_state("Check 2.3")(w), approvals_state(w)),
    ),
    api_row(
        "approvals:api_item_done[field]",
        "approvals:api_item_done",
        "POST",
        ok=None,
        token_allowed=False,
        kwargs=in_deployment(item_pk=lambda w: w.items["Time Completed"].pk),
        data=lambda w: {"value": "10:42"},
        json_body=True,
        state=item_state("Time Completed"),
    ),
    Row(
        "approvals:api_gates[other deployment's id]",
        "approvals:api_gates",
        "GET",
        dict.fromkeys(PERSONAS, 401),  # a token opens its own deployment only
        kwargs=lambda w: {"pk": w.other.pk},
    ),
    Row(
        "approvals:api_item_done[other deployment's item]",
        "approvals:api_item_done",
        "POST",
        dict.fromkeys(PERSONAS, 401),
        kwargs=lambda w: {"pk": w.other.pk, "item_pk": Item.objects.filter(deployment=w.other, kind="check").first().pk},
        data=lambda w: {},
        json_body=True,
        state=lambda w: list(Item.objects.filter(deployment=w.other).values_list("checked", "value")),
    ),
    # --- comms ---
    deployment_row("comms:page", "comms:page", "GET", ok=200, kwargs=pk),
    deployment_row(
        "comms:channel_save",
        "comms:channel_save",
        "POST",
        ok=302,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {"name": "Ops mail", "transport": "email", "recipients": "ops@example.com"},
        state=comms_state,
    ),
    deployment_row(
        "comms:template_save",
        "comms:template_save",
        "POST",
        ok=302,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {"name": "Notice", "kind": "other", "subject": "Heads up", "body": "We start soon."},
        state=comms_state,
    ),
    deployment_row(
        "comms:preview",
        "comms:preview",
        "GET",
        ok=200,
        setup=with_template,
        kwargs=in_deployment(template_pk=lambda w: w.obj.template.pk),
    ),
    deployment_row(
        "comms:send",
        "comms:send",
        "POST",
        ok=302,
        allowed=("po", "lead"),  # the template's sender role, or the lead
        setup=with_template,
        kwargs=in_deployment(template_pk=lambda w: w.obj.template.pk),
        data=lambda w: {},
        state=comms_state,
    ),
    deployment_row(
        "comms:schedule",
        "comms:schedule",
        "POST",
        ok=302,
        allowed=("lead",),
        setup=with_template,
        kwargs=in_deployment(template_pk=lambda w: w.obj.template.pk),
        data=lambda w: {},
        state=comms_state,
    ),
    deployment_row(
        "comms:delete",
        "comms:delete",
        "POST",
        ok=302,
        allowed=("lead",),
        setup=with_template,
        kwargs=in_deployment(template_pk=lambda w: w.obj.template.pk),
        data=lambda w: {},
        state=comms_state,
    ),
    deployment_row(
        "comms:cancel_scheduled",
        "comms:cancel_scheduled",
        "POST",
        ok=302,
        allowed=("lead",),
        setup=with_scheduled,
        kwargs=in_deployment(scheduled_pk=lambda w: w.obj.scheduled.pk),
        data=lambda w: {"reason": "Not needed"},
        state=comms_state,
    ),
    deployment_row(
        "comms:status_page_action",
        "comms:status_page_action",
        "POST",
        ok=302,
        allowed=("lead",),
        kwargs=pk,
        data=lambda w: {"action": "enable"},
        state=comms_state,
    ),
    public_row(
        "comms:status_page",
        "comms:status_page",
        "GET",
        ok=200,
        setup=with_status_page,
        kwargs=lambda w: {"token": w.obj.page.token},
    ),
    # --- incidents and the review ---
    deployment_row(
        "incidents:raise",
        "incidents:raise",
        "POST",
        ok=204,
        allowed=(*ROLE_HOLDERS, "lead"),
        kwargs=pk,
        data=lambda w: {"severity": "sev3", "title": "Slow logins", "impact": "Some users wait"},
        state=incident_state,
    ),
    deployment_row(
        "incidents:update",
        "incidents:update",
        "POST",
        ok=204,
        allowed=(*ROLE_HOLDERS, "lead"),
        setup=with_incident,
        kwargs=in_deployment(incident_pk=lambda w: w.obj.incident.pk),
        data=lambda w: {"text": "Investigating", "status": "investigating"},
        state=incident_state,
    ),
    deployment_row(
        "incidents:ack",
        "incidents:ack",
        "POST",
        ok=204,
        allowed=(*ROLE_HOLDERS, "lead"),
        setup=with_paged_incident,
        kwargs=in_deployment(incident_pk=lambda w: w.obj.incident.pk),
        data=lambda w: {},
        state=incident_state,
    ),
    deployment_row("incidents:review", "incidents:review", "GET", ok=200, kwargs=pk),
    deployment_row(
        "incidents:review[POST]",
        "incidents:review",
        "POST",
        ok=302,
        allowed=(*ROLE_HOLDERS, "lead"),
        setup=finish,
        kwargs=pk,
        data=lambda w: {"notes": "Went well", "lessons_learned": "Start earlier", "follow_up_status": "open"},
        state=review_state,
    ),
    deployment_row(
        "incidents:action_add",
        "incidents:action_add",
        "POST",
        ok=302,
        allowed=(*ROLE_HOLDERS, "lead"),
        setup=finish,
        kwargs=pk,
        data=lambda w: {"text": "Automate the backup check"},
        state=review_state,
    ),
    deployment_row(
        "incidents:action_status",
        "incidents:action_status",
        "POST",
        ok=302,
        allowed=(*ROLE_HOLDERS, "lead"),
        setup=with_action_item,
        kwargs=in_deployment(item_pk=lambda w: w.obj.action_item.pk),
        data=lambda w: {"status": "done"},
        state=review_state,
    ),
    # --- reports ---
    global_row("reports:verify", "reports:verify", "GET", ok=200),
    global_row(
        "reports:verify[POST]",
        "reports:verify",
        "POST",
        ok=200,
        data=lambda w: {"report": SimpleUploadedFile("report.pdf", b"not a pdf at all", content_type="application/pdf")},
        state=lambda w: Event.objects.count(),
        changes=False,  # checking a file reads only
    ),
    deployment_row("reports:deployment", "reports:deployment", "GET", ok=200, kwargs=pk),
    deployment_row(
        "reports:request_pdf",
        "reports:request_pdf",
        "POST",
        ok=302,
        kwargs=pk,
        data=lambda w: {"paper": "a4"},
        state=lambda w: ReportJob.objects.filter(deployment=w.d).count(),
    ),
    deployment_row(
        "reports:job", "reports:job", "GET", ok=200, setup=with_job(), kwargs=in_deployment(job_pk=lambda w: w.obj.job.pk)
    ),
    deployment_row(
        "reports:download",
        "reports:download",
        "GET",
        ok=200,
        setup=with_job(JobState.DONE),
        kwargs=in_deployment(job_pk=lambda w: w.obj.job.pk),
    ),
    deployment_row("reports:markdown", "reports:markdown", "GET", ok=200, kwargs=pk),
    deployment_row("reports:json", "reports:json", "GET", ok=200, kwargs=pk),
    deployment_row(
        "reports:sign_off",
        "reports:sign_off",
        "POST",
        ok=302,
        allowed=("po",),  # the runbook's Sign-off step belongs to the Product Owner
        setup=finish,
        kwargs=pk,
        data=lambda w: {"role": "Product Owner", "outcome": "success", "statement": "Went as planned", "password": PASSWORD},
        state=lambda w: (events(w), SignOff.objects.filter(deployment=w.d).count()),
    ),
    # --- runbooks ---
    global_row("checklists:list", "checklists:list", "GET", ok=200, allowed=RUNBOOK_READERS),
    global_row(
        "checklists:runbook",
        "checklists:runbook",
        "GET",
        ok=200,
        allowed=RUNBOOK_READERS,
        kwargs=lambda w: {"pk": w.editable.runbook_id},
    ),
    global_row("checklists:version", "checklists:version", "GET", ok=200, allowed=RUNBOOK_READERS, kwargs=version_pk),
    global_row("checklists:export", "checklists:export", "GET", ok=200, allowed=RUNBOOK_READERS, kwargs=version_pk),
    global_row("checklists:import", "checklists:import", "GET", ok=200, allowed=RUNBOOK_EDITORS),
    global_row(
        "checklists:import[POST]",
        "checklists:import",
        "POST",
        ok=302,
        allowed=RUNBOOK_EDITORS,
        data=lambda w: {"file": SimpleUploadedFile("table.md", RUNBOOK_MD, content_type="text/markdown")},
        state=lambda w: RunbookVersion.objects.count(),
    ),
    global_row("checklists:step_editor", "checklists:step_editor", "GET", ok=200, allowed=RUNBOOK_EDITORS, kwargs=step_pk),
    editor_row("checklists:version_rename", "checklists:version_rename", kwargs=version_pk, data=lambda w: {"title": "Renamed"}),
    editor_row("checklists:phase_add", "checklists:phase_add", kwargs=version_pk, data=lambda w: {"title": "Aftercare"}),
    editor_row("checklists:phase_rename", "checklists:phase_rename", kwargs=phase_pk, data=lambda w: {"title": "Go"}),
    editor_row("checklists:phase_move", "checklists:phase_move", kwargs=phase_pk, data=lambda w: {"direction": "down"}),
    editor_row("checklists:phase_remove", "checklists:phase_remove", kwargs=phase_pk, data=lambda w: {}),
    editor_row("checklists:step_add", "checklists:step_add", kwargs=phase_pk, data=lambda w: {"title": "Smoke"}),
    editor_row("checklists:step_rename", "checklists:step_rename", kwargs=step_pk, data=lambda w: {"title": "Backup"}),
    editor_row("checklists:step_move", "checklists:step_move", kwargs=step_pk, data=lambda w: {"direction": "down"}),
    editor_row("checklists:step_remove", "checklists:step_remove", kwargs=step_pk, data=lambda w: {}),
    editor_row("checklists:step_role", "checklists:step_role", kwargs=step_pk, data=lambda w: {"new_role": "SRE"}),
    editor_row(
        "checklists:step_timing", "checklists:step_timing", kwargs=step_pk, data=lambda w: {"offset": "T-1h", "duration": "20"}
    ),
    editor_row("checklists:step_gate", "checklists:step_gate", kwargs=step_pk, data=lambda w: {"is_gate": "on"}),
    editor_row(
        "checklists:item_add", "checklists:item_add", kwargs=step_pk, data=lambda w: {"kind": "check", "text": "Logs clean"}
    ),
    editor_row("checklists:item_move", "checklists:item_move", kwargs=item_pk, data=lambda w: {"direction": "down"}),
    editor_row("checklists:item_remove", "checklists:item_remove", kwargs=item_pk, data=lambda w: {}),
    global_row("rollouts:runbook_plan", "rollouts:runbook_plan", "GET", ok=200, allowed=RUNBOOK_READERS, kwargs=version_pk),
    global_row(
        "rollouts:runbook_plan[POST]",
        "rollouts:runbook_plan",
        "POST",
        ok=302,
        allowed=RUNBOOK_EDITORS,
        kwargs=version_pk,
        data=lambda w: plan_form_post(step=step_pk(w)["pk"]),
        state=runbook_rollout_state,
    ),
    # --- automated steps and rollouts ---
    deployment_row(
        "rollouts:start",
        "rollouts:start",
        "POST",
        ok=204,
        allowed=("devops", "lead"),  # Step 1 belongs to the DevOps Engineer
        setup=with_target,
        kwargs=in_deployment(step_pk=lambda w: w.steps["Step 1"].pk),
        data=lambda w: {},
        state=lambda w: (events(w), TaskRun.objects.filter(deployment=w.d).count()),
    ),
    deployment_row(
        "rollouts:cancel",
        "rollouts:cancel",
        "POST",
        ok=204,
        allowed=("devops", "lead"),
        setup=with_run,
        kwargs=in_deployment(run_pk=lambda w: w.obj.run.pk),
        data=lambda w: {},
        state=lambda w: (events(w), list(TaskRun.objects.filter(deployment=w.d).values_list("state", "cancel_requested"))),
    ),
    deployment_row(
        "rollouts:log", "rollouts:log", "GET", ok=200, setup=with_run, kwargs=in_deployment(run_pk=lambda w: w.obj.run.pk)
    ),
    deployment_row("rollouts:plan", "rollouts:plan", "GET", ok=200, setup=with_plan(running_deployment=False), kwargs=pk),
    deployment_row(
        "rollouts:plan[POST]",
        "rollouts:plan",
        "POST",
        ok=302,
        allowed=("lead",),
        setup=with_plan(running_deployment=False),
        kwargs=pk,
        data=lambda w: plan_form_post(sample=60),
        state=lambda w: (events(w), list(RolloutPlan.objects.filter(deployment=w.d).values_list("pk", "sample_seconds"))),
    ),
    deployment_row(
        "rollouts:reading",
        "rollouts:reading",
        "POST",
        ok=204,
        allowed=("qa", "lead"),  # the plan's step (Step 2) belongs to the QA Lead
        setup=with_plan("running"),
        kwargs=in_deployment(gate_pk=lambda w: w.obj.metric_gate.pk),
        data=lambda w: {"value": "0.4", "note": "dashboard"},
        state=plan_state,
    ),
    *[
        deployment_row(
            f"rollouts:rollout[{verb}]",
            "rollouts:rollout",
            "POST",
            ok=204,
            allowed=("qa", "lead"),
            setup=with_plan(plan_from),
            kwargs=lambda w, verb=verb: {"pk": w.d.pk, "verb": verb},
            data=lambda w: {"reason": "as agreed on the call"},
            state=plan_state,
        )
        for verb, plan_from in [
            ("start", "draft"),
            ("confirm", "waiting"),
            ("pause", "running"),
            ("resume", "paused"),
            ("promote", "running"),
            ("abort", "running"),
        ]
    ],
]

# --- the meta-test: no URL pattern without a row ---------------------------------------------


def all_url_patterns(resolver=None, namespace=""):
    """(name, route) of every pattern the project serves, admin and static left out."""
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin" or entry.app_name == "admin":
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += [(name, f"{entry.pattern}{route}") for name, route in all_url_patterns(entry, inner)]
        elif isinstance(entry, URLPattern):
            route = str(entry.pattern)
            if route.startswith(("static", "^static", "media")):
                continue
            found.append((f"{namespace}{entry.name}" if entry.name else None, route))
    return found


def test_every_url_pattern_has_a_row():
    covered = {row.name for row in ROWS}
    missing = sorted(f"{name or '(unnamed)'} → {route}" for name, route in all_url_patterns() if name not in covered)
    assert not missing, "URL patterns without a row in the permission table (decide who may use them): " + ", ".join(missing)


def test_every_row_names_a_served_pattern_and_every_persona():
    served = {name for name, _ in all_url_patterns()}
    stale = sorted({row.name for row in ROWS} - served)
    assert not stale, f"rows for patterns that no longer exist: {stale}"
    for row in ROWS:
        assert set(row.expect) == set(PERSONAS), f"{row.key} does not say what every persona gets"


# --- the matrix --------------------------------------------------------------------------------


def _params():
    for row in ROWS:
        for persona in PERSONAS:
            marks = []
            if persona in row.xfail:
                marks.append(pytest.mark.xfail(strict=True, reason=row.xfail[persona]))
            yield pytest.param(row, persona, id=f"{row.key}-{persona}".replace(" ", "_"), marks=marks)


def _client(w, persona) -> Client:
    client = Client()
    if persona in w.users:
        client.force_login(w.users[persona])
    return client


def _request(w, row, persona):
    client = _client(w, persona)
    url = reverse(row.name, kwargs=row.kwargs(w))
    headers = {}
    if persona == TOKEN:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {w.token}"
    if row.method == "GET":
        return client.get(url, **headers)
    data = row.data(w) if row.data else {}
    if row.json_body:
        return client.post(url, data=json.dumps(data), content_type="application/json", **headers)
    return client.post(url, data=data, **headers)


class TestPermissionTable:
    """The HTTP matrix; a class, so the shared world is rolled back before the websocket
    tests (which need committed rows) begin."""

    @pytest.mark.parametrize(("row", "persona"), list(_params()))
    def test_permission(self, world, row, persona):
        check_row(world, row, persona)


def check_row(world, row, persona):
    if row.setup:
        row.setup(world)
    world.d.refresh_from_db()
    refused = persona not in row.allowed
    before = row.state(world) if row.state else None
    response = _request(world, row, persona)
    expected = row.expect[persona]
    acceptable = expected if isinstance(expected, frozenset) else frozenset({expected})
    assert response.status_code in acceptable, (
        f"{row.key} as {persona}: expected {sorted(acceptable)}, got {response.status_code}: {response.content[:300]!r}"
    )
    if response.status_code == 302 and persona in (ANONYMOUS, TOKEN) and row.name not in ("logout", "login"):
        assert response["Location"].startswith(reverse("login")), response["Location"]
    if row.state and refused:
        assert row.state(world) == before, f"{row.key} as {persona} was refused but changed state"
    elif row.state and row.changes:
        assert row.state(world) != before, f"{row.key} as {persona} was permitted but changed nothing"


# --- the websocket ----------------------------------------------------------------------------

WS_MESSAGES = {
    "ping": ({"type": "ping"}, {"type": "pong"}),
    "unknown type": ({"type": "tick", "item": 1, "checked": True}, None),
    "not json": ("{not json", None),
}


def _ws_expectation(persona):
    if persona in PARTICIPANTS:
        return True, None
    if persona in (ANONYMOUS, TOKEN):  # a token is no login: the socket has no user
        return False, 4401
    return False, 4404


def _communicator(deployment_id, user):
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/deployments/{deployment_id}/")
    comm.scope["user"] = user
    return comm


@pytest.fixture
def ws_world(transactional_db):
    lead = make_user("lead")
    deployment = make_deployment(lead=lead)
    people = staff_deployment(deployment, lead)
    other_lead = make_user("other_lead")
    make_deployment(lead=other_lead, version=make_version(name="Other runbook"))
    staff = make_user("staff")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    users = {**people, "other_lead": other_lead, "staff": staff, ANONYMOUS: AnonymousUser(), TOKEN: AnonymousUser()}
    return deployment, users


async def _drain(comm):
    """Read what the server pushes on its own (presence) until it is quiet."""
    seen = []
    while not await comm.receive_nothing(timeout=0.3):
        seen.append(await comm.receive_output())
    return seen


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("persona", PERSONAS)
async def test_websocket_connect(ws_world, persona):
    deployment, users = ws_world
    comm = _communicator(deployment.pk, users[persona])
    connected, code = await comm.connect()
    assert (connected, code if not connected else None) == _ws_expectation(persona)
    if connected:
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("message", list(WS_MESSAGES))
async def test_websocket_message(ws_world, message, persona):
    deployment, users = ws_world
    sent, reply = WS_MESSAGES[message]
    comm = _communicator(deployment.pk, users[persona])
    connected, code = await comm.connect()
    expected_connected, expected_code = _ws_expectation(persona)
    assert connected == expected_connected
    if not connected:
        assert code == expected_code  # refused before any message can be read
        return
    await _drain(comm)
    before = await _event_count(deployment.pk)
    await comm.send_to(text_data=sent if isinstance(sent, str) else json.dumps(sent))
    outputs = await _drain(comm)
    texts = [json.loads(o["text"]) for o in outputs if o.get("type") == "websocket.send" and o.get("text", "").startswith("{")]
    if reply is None:
        assert not [o for o in outputs if o.get("type") == "websocket.close"], "an ignored message closed the socket"
        assert not texts, f"{message} got an answer: {texts}"
    else:
        assert reply in texts
    assert await _event_count(deployment.pk) == before  # messages change nothing
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_removed_participant_is_closed_at_once(ws_world):
    """Removal closes the socket with 4403 without waiting for the browser's next ping."""
    deployment, users = ws_world
    comm = _communicator(deployment.pk, users["observer"])
    connected, _ = await comm.connect()
    assert connected
    await _drain(comm)
    await sync_to_async(services.remove_participant)(deployment, users["lead"], users["observer"])
    closes = [o for o in await _drain(comm) if o.get("type") == "websocket.close"]
    assert closes and closes[0].get("code") == 4403


@pytest.mark.django_db(transaction=True)
async def test_websocket_ping_rechecks_access(ws_world):
    """Access is checked again on each message: a ping after the right is gone closes with 4403."""
    deployment, users = ws_world
    comm = _communicator(deployment.pk, users["observer"])
    connected, _ = await comm.connect()
    assert connected
    await _drain(comm)
    await sync_to_async(revoke_participation)(users["observer"], deployment)  # no broadcast: only the re-check sees it
    await comm.send_to(text_data=json.dumps({"type": "ping"}))
    outputs = await _drain(comm)
    assert {"type": "pong"} not in [json.loads(o["text"]) for o in outputs if o.get("text", "").startswith("{")]
    closes = [o for o in outputs if o.get("type") == "websocket.close"]
    assert closes and closes[0].get("code") == 4403


async def _event_count(deployment_id):
    return await sync_to_async(lambda: Event.objects.filter(deployment_id=deployment_id).count())()
