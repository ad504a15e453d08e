"""The approvals part of the signed report: sign-offs before start, every gate and every vote."""

from approvals.models import Gate, GateState, RequiredApproval
from reports.sections import Section, Table


def _name(user):
    return (user.get_full_name() or user.get_username()) if user else ""


def _decision_word(gate) -> str:
    if gate.decision:
        return gate.label_for(gate.decision)
    return "cancelled" if gate.state == GateState.CANCELLED else "open"


def gates_section(deployment):
    gates = list(
        Gate.objects.filter(deployment=deployment)
        .prefetch_related("votes__voter", "voter_roles")
        .select_related("decider_role", "overridden_by")
    )
    approvals = list(RequiredApproval.objects.filter(deployment=deployment).select_related("role", "approved_by"))
    if not gates and not approvals:
        return None
    tables, records = [], []
    if approvals:
        tables.append(
            Table(
                caption="Required approvals before start",
                columns=["Approval", "Role", "Given by", "When", "Statement"],
                rows=[
                    [a.label, a.role.name if a.role else "Lead", _name(a.approved_by), a.approved_at, a.statement or "missing"]
                    for a in approvals
                ],
            )
        )
        records += [
            {
                "approval": a.label,
                "role": a.role.name if a.role else None,
                "by": _name(a.approved_by),
                "at": a.approved_at,
                "statement": a.statement,
            }
            for a in approvals
        ]
    if gates:
        tables.append(
            Table(
                caption="Go/no-go gates",
                columns=["Gate", "Rule", "Voters", "Decision", "Why", "Decided"],
                rows=[
                    [
                        g.title,
                        g.get_rule_display(),
                        ", ".join(r.name for r in g.voter_roles.all()),
                        _decision_word(g),
                        g.decision_summary + (" (override)" if g.overridden_by_id else ""),
                        g.decided_at,
                    ]
                    for g in gates
                ],
            )
        )
        votes = [(g, v) for g in gates for v in g.votes.all()]
        tables.append(
            Table(
                caption="Every vote",
                columns=["Gate", "Voter", "Vote", "Reason", "Cast", "Stale"],
                rows=[
                    [
                        g.title,
                        _name(v.voter),
                        g.go_label if v.choice == "go" else g.no_go_label,
                        v.reason,
                        v.cast_at,
                        "stale: evidence changed" if v.stale else "",
                    ]
                    for g, v in votes
                ],
                note="A stale vote was cast against checklist evidence that changed before the gate closed; it did not count.",
            )
        )
        records += [
            {
                "gate": g.title,
                "rule": g.rule,
                "decision": g.decision,
                "why": g.decision_summary,
                "decided_at": g.decided_at,
                "override": bool(g.overridden_by_id),
                "votes": [
                    {
                        "voter": _name(v.voter),
                        "choice": v.choice,
                        "reason": v.reason,
                        "cast_at": v.cast_at,
                        "stale": v.stale,
                        "evidence": v.evidence_digest,
                    }
                    for v in g.votes.all()
                ],
            }
            for g in gates
        ]
    decided = [g for g in gates if g.decision]
    summary = f"{len(gates)} gate{'s' if len(gates) != 1 else ''}, {len(decided)} decided" + (
        ": " + ", ".join(g.go_label if g.decision == "go" else g.no_go_label for g in decided) if decided else ""
    )
    if approvals:
        summary += f"; {sum(1 for a in approvals if a.is_given)}/{len(approvals)} approvals"
    return Section(summary=summary, tables=tables, records=records)
