"""htmx endpoints for approvals and votes, and the lead's gate and token pages."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from approvals import services
from approvals.models import ApiToken, Gate, GateRule, RequiredApproval
from deployments.forms import parse_id
from deployments.permissions import PermissionDenied, access_for, get_visible_deployment_or_404
from deployments.services import InvalidChange
from deployments.views import service_response, toast_response


def _prompt(request, field):
    return request.POST.get(field) or request.headers.get("HX-Prompt", "")


@login_required
@require_POST
def give(request, pk, approval_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    approval = RequiredApproval.objects.filter(deployment=deployment, pk=approval_pk).first()
    if approval is None:
        raise Http404("No such approval")
    return service_response(
        lambda: services.give_approval(
            approval.pk, request.user, statement=_prompt(request, "statement"), comment=request.POST.get("comment", "")
        ),
    )


@login_required
@require_POST
def withdraw(request, pk, approval_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    approval = RequiredApproval.objects.filter(deployment=deployment, pk=approval_pk).first()
    if approval is None:
        raise Http404("No such approval")
    return service_response(lambda: services.withdraw_approval(approval.pk, request.user, reason=_prompt(request, "reason")))


def _gate_or_404(deployment, gate_pk):
    gate = Gate.objects.filter(deployment=deployment, pk=gate_pk).first()
    if gate is None:
        raise Http404("No such gate")
    return gate


@login_required
@require_POST
def vote(request, pk, gate_pk):
    # The service checks that this person sees the deployment and that the gate is its own
    # (a 404 otherwise, like the other views): the hot path reads each row once.
    return service_response(
        lambda: services.cast_vote(
            gate_pk, request.user, request.POST.get("choice", ""), reason=_prompt(request, "reason"), deployment_id=pk
        ),
    )


@login_required
@require_POST
def close(request, pk, gate_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    gate = _gate_or_404(deployment, gate_pk)
    return service_response(
        lambda: services.close_gate_early(
            gate.pk, request.user, request.POST.get("decision", ""), reason=_prompt(request, "reason")
        ),
    )


MAX_QUORUM = 1000  # more GO votes than any war room has people; the column holds 32,767


def _ints(values):
    ids = [parse_id(v) for v in values if v != ""]
    if None in ids:
        raise InvalidChange("Malformed form: ids must be numbers.")
    return ids


def _quorum(raw: str) -> int:
    text = raw.strip()
    if text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= MAX_QUORUM:
        return int(text)
    raise InvalidChange(f"Quorum numbers must be whole numbers from 1 to {MAX_QUORUM}.")


def _rule_from_post(request, deployment):
    quorum = request.POST.get("quorum", "").strip()
    role_quorum = {}
    for key, value in request.POST.items():
        if key.startswith("role_quorum_") and value.strip():
            role_quorum[key.removeprefix("role_quorum_")] = value.strip()
    role_ids = set(deployment.roles.values_list("pk", flat=True))
    quorum_role_ids = _ints(role_quorum.keys())
    if not set(quorum_role_ids) <= role_ids:
        raise InvalidChange("Some roles are not in this deployment.")
    role_quorum = {str(role_id): _quorum(v) for role_id, v in zip(quorum_role_ids, role_quorum.values(), strict=True)}
    decider = request.POST.get("decider_role", "")
    decider_role_id = _ints([decider])[0] if decider else None
    if decider_role_id is not None and decider_role_id not in role_ids:
        raise InvalidChange("The decider role is not in this deployment.")
    return {
        "voter_role_ids": _ints(request.POST.getlist("voter_roles")),
        "rule": request.POST.get("rule", ""),
        "quorum": _quorum(quorum) if quorum else None,
        "role_quorum": role_quorum,
        "decider_role_id": decider_role_id,
        "veto_role_ids": _ints(request.POST.getlist("veto_roles")),
    }


@login_required
def gate_settings(request, pk, gate_pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    gate = _gate_or_404(deployment, gate_pk)
    access = access_for(request.user, deployment)
    status = 200
    if request.method == "POST":
        if not access.is_lead:
            return toast_response("Only the lead may configure gates.", 403)
        try:
            services.configure_gate(
                gate.pk,
                request.user,
                **_rule_from_post(request, deployment),
                condition_item_ids=_ints(request.POST.getlist("condition_items")),
            )
        except InvalidChange as exc:
            messages.error(request, str(exc))
            status = 400
        else:
            messages.success(request, "Gate saved.")
            return redirect("deployments:warroom", pk)
    context = {
        "d": deployment,
        "gate": gate,
        "access": access,
        "rules": GateRule.choices,
        "roles": deployment.roles.all(),
        "items": deployment.items.filter(is_group=False).exclude(kind="gate"),
        "voter_ids": set(gate.voter_roles.values_list("pk", flat=True)),
        "veto_ids": set(gate.veto_roles.values_list("pk", flat=True)),
        "condition_ids": set(gate.condition_items.values_list("pk", flat=True)),
    }
    return render(request, "approvals/gate.html", context, status=status)


@login_required
def gate_new(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    access = access_for(request.user, deployment)
    if request.method == "POST":
        try:
            rule = _rule_from_post(request, deployment)
            rule.pop("role_quorum")
            services.add_gate(deployment, request.user, title=request.POST.get("title", ""), **rule)
        except InvalidChange as exc:
            messages.error(request, str(exc))
        except PermissionDenied as exc:
            return toast_response(str(exc), 403)
        else:
            messages.success(request, "Gate added.")
            return redirect("deployments:warroom", pk)
    return render(
        request,
        "approvals/gate.html",
        {
            "d": deployment,
            "gate": None,
            "access": access,
            "rules": GateRule.choices,
            "roles": deployment.roles.all(),
            "items": [],
            "voter_ids": set(),
            "veto_ids": set(),
            "condition_ids": set(),
        },
        status=400 if request.method == "POST" else 200,
    )


@login_required
def tokens(request, pk):
    deployment = get_visible_deployment_or_404(request.user, pk)
    access = access_for(request.user, deployment)
    if not access.is_lead:
        return toast_response("Only the lead manages API tokens.", 403)
    new_token = None
    if request.method == "POST":
        try:
            if request.POST.get("revoke"):
                token = ApiToken.objects.filter(deployment=deployment, pk=parse_id(request.POST["revoke"])).first()
                if token is None:
                    raise Http404("No such token")
                services.revoke_api_token(token.pk, request.user)
                messages.success(request, f"Token “{token.name}” revoked.")
            else:
                _, new_token = services.create_api_token(deployment, request.user, name=request.POST.get("name", ""))
        except InvalidChange as exc:
            messages.error(request, str(exc))
    return render(
        request,
        "approvals/tokens.html",
        {
            "d": deployment,
            "tokens": deployment.api_tokens.all(),
            "new_token": new_token,
            "base_url": request.build_absolute_uri("/").rstrip("/"),
        },
    )
