"""The append-only, hash-chained event log.

Each event's hash covers its own content and the previous event's hash, so
changing or removing any event breaks every link after it. Appending takes a row
lock on the deployment, which also orders concurrent appends.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from deployments import checkpoints
from deployments.actors import SystemActor
from deployments.models import Deployment, Event

SYSTEM_ACTOR = "Warroom"


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder, ensure_ascii=False)


def event_hash(
    *, deployment_id, seq, created_at, actor_id, actor_label, action, object_type, object_id, summary, before, after, prev_hash
) -> str:
    payload = _canonical(
        {
            "deployment": deployment_id,
            "seq": seq,
            "created_at": created_at.isoformat(),
            "actor": actor_id,
            "actor_label": actor_label,
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "summary": summary,
            "before": before,
            "after": after,
            "prev": prev_hash,
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def record_event(
    deployment_id: int,
    *,
    actor,
    action: str,
    summary: str,
    obj=None,
    before=None,
    after=None,
    actor_label: str | None = None,
    head: Deployment | None = None,
) -> Event:
    """Append one event. Must run inside the caller's transaction. ``actor`` is a person,
    a SystemActor (recorded by its label) or None (Warroom).

    ``head``: the deployment row this transaction locked (``locks.lock_deployment``), when no
    event was appended since except through this same ``head``: its chain fields are used
    and moved on, instead of being read again. Without it the head is read (and locked)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must be called inside transaction.atomic")
    if isinstance(actor, SystemActor):
        actor, actor_label = None, actor_label or actor.label
    if head is None:
        head = Deployment.objects.select_for_update(no_key=True).only("event_count", "last_event_hash").get(pk=deployment_id)
    elif head.pk != deployment_id:
        raise ValueError("record_event: head is another deployment's row")
    seq = head.event_count + 1
    created_at = timezone.now()
    label = actor_label or (actor.get_full_name() or actor.get_username() if actor else SYSTEM_ACTOR)
    # Round-trip through JSON so the stored value and the hashed value are identical.
    before = json.loads(_canonical(before)) if before is not None else None
    after = json.loads(_canonical(after)) if after is not None else None
    fields = dict(
        deployment_id=deployment_id,
        seq=seq,
        created_at=created_at,
        actor_id=actor.pk if actor else None,
        actor_label=label,
        action=action,
        object_type=type(obj).__name__.lower() if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        summary=summary[:500],
        before=before,
        after=after,
        prev_hash=head.last_event_hash,
    )
    digest = event_hash(**fields)
    event = Event.objects.create(hash=digest, **fields)
    Deployment.objects.filter(pk=deployment_id).update(event_count=seq, last_event_hash=digest)
    head.event_count, head.last_event_hash = seq, digest
    return event


@dataclass
class ChainReport:
    count: int
    last_hash: str
    broken_at: int | None = None
    problem: str = ""
    notes: list[str] = field(default_factory=list)  # what could not be checked, and why

    @property
    def ok(self):
        return self.broken_at is None


def verify_chain(deployment_id: int) -> ChainReport:
    """Recompute every hash in order; name the first event whose link does not hold.

    Then compare the chain with its signed checkpoints (deployments.checkpoints): a chain
    rewritten and recomputed end to end holds together, but no longer matches them.
    """
    prev = ""
    expected_seq = 1
    count = 0
    anchored = checkpoints.checkpointed_seqs(deployment_id)
    hashes: dict[int, str] = {}
    for event in Event.objects.filter(deployment_id=deployment_id).order_by("seq").iterator(chunk_size=2000):
        count += 1
        if event.seq != expected_seq:
            return ChainReport(count, prev, expected_seq, f"event #{expected_seq} is missing (found #{event.seq})")
        if event.prev_hash != prev:
            return ChainReport(count, prev, event.seq, f"event #{event.seq} does not point at the hash of #{event.seq - 1}")
        recomputed = event_hash(
            deployment_id=event.deployment_id,
            seq=event.seq,
            created_at=event.created_at,
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            summary=event.summary,
            before=event.before,
            after=event.after,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            return ChainReport(count, prev, event.seq, f"event #{event.seq} was changed after it was written")
        prev = event.hash
        if event.seq in anchored:
            hashes[event.seq] = event.hash
        expected_seq += 1
    head = Deployment.objects.filter(pk=deployment_id).values_list("event_count", "last_event_hash").first()
    if head and (head[0] != count or head[1] != prev):
        return ChainReport(
            count,
            prev,
            count + 1 if head[0] > count else count,
            f"the deployment records {head[0]} events ending in {head[1][:12]}…, the log has {count}",
        )
    if not anchored:
        return ChainReport(count, prev)
    mismatch, notes = checkpoints.check_against_checkpoints(deployment_id, hashes, count)
    if mismatch is not None:
        return ChainReport(count, prev, mismatch.checkpoint.seq, mismatch.problem, notes)
    return ChainReport(count, prev, notes=notes)
