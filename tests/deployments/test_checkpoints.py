"""Signed checkpoints anchor each chain's head outside the rows it guards:
a chain rewritten and recomputed end to end holds together, and is still caught."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from deployments import checkpoints, services
from deployments.events import event_hash, verify_chain
from deployments.models import ChainCheckpoint, CheckpointReason, Deployment, Event, Item
from deployments.tasks import checkpoint_chains


def _tick(deployment, people, text="Check 1.1"):
    item = Item.objects.get(deployment=deployment, text=text)
    services.update_item(item.pk, people["devops"], revision=item.revision, checked=True)


def rewrite_and_recompute(deployment_id: int, seq: int, summary: str) -> None:
    """What someone with the database's owner rights can do: change an event, then make every hash agree again."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # past the append-only trigger
        cursor.execute(
            "UPDATE deployments_event SET summary = %s WHERE deployment_id = %s AND seq = %s", [summary, deployment_id, seq]
        )
        prev = Event.objects.get(deployment_id=deployment_id, seq=seq - 1).hash if seq > 1 else ""
        for event in Event.objects.filter(deployment_id=deployment_id, seq__gte=seq).order_by("seq"):
            digest = event_hash(
                deployment_id=deployment_id,
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
                prev_hash=prev,
            )
            cursor.execute("UPDATE deployments_event SET prev_hash = %s, hash = %s WHERE id = %s", [prev, digest, event.pk])
            prev = digest
        cursor.execute("UPDATE deployments_deployment SET last_event_hash = %s WHERE id = %s", [prev, deployment_id])
        cursor.execute("SET LOCAL session_replication_role = origin")


def test_beat_checkpoints_every_chain_that_grew_and_only_those(crew):
    deployment, people = crew
    idle = Deployment.objects.exclude(pk=deployment.pk).count()
    assert checkpoint_chains() == 1 + idle
    first = ChainCheckpoint.objects.get(deployment=deployment)
    deployment.refresh_from_db()
    assert (first.seq, first.head_hash, first.reason) == (deployment.event_count, deployment.last_event_hash, "periodic")
    assert first.head_event_id == Event.objects.get(deployment=deployment, seq=deployment.event_count).pk
    assert checkpoint_chains() == 0  # nothing moved
    _tick(deployment, people)
    assert checkpoint_chains() == 1
    assert verify_chain(deployment.pk).ok


def test_without_checkpoints_a_recomputed_chain_would_pass(crew):
    """The weakness checkpoints close: a rewrite that recomputes every hash holds together."""
    deployment, people = crew
    _tick(deployment, people)
    rewrite_and_recompute(deployment.pk, 2, "nothing to see")
    assert verify_chain(deployment.pk).ok


def test_a_rewritten_and_recomputed_chain_is_caught_by_the_first_checkpoint_it_breaks(crew):
    deployment, people = crew
    _tick(deployment, people)
    first = checkpoints.take_checkpoint(deployment.pk, reason=CheckpointReason.PERIODIC)
    _tick(deployment, people, "Check 1.2")
    checkpoints.take_checkpoint(deployment.pk, reason=CheckpointReason.REPORT)
    assert verify_chain(deployment.pk).ok

    rewrite_and_recompute(deployment.pk, 2, "nothing to see")
    report = verify_chain(deployment.pk)
    assert not report.ok and report.broken_at == first.seq
    assert f"checkpoint #{first.pk} (periodic" in report.problem and "rewritten after that checkpoint" in report.problem
    with pytest.raises(CommandError, match=f"checkpoint #{first.pk}"):
        call_command("verify_events", deployment.pk)


def test_removed_events_are_caught_by_a_checkpoint(crew):
    deployment, people = crew
    _tick(deployment, people)
    checkpoint = checkpoints.take_checkpoint(deployment.pk, reason=CheckpointReason.PERIODIC)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "DELETE FROM deployments_chaincheckpoint WHERE id <> %s AND deployment_id = %s", [checkpoint.pk, deployment.pk]
        )
        last = Event.objects.filter(deployment=deployment).order_by("-seq").first()
        cursor.execute("DELETE FROM deployments_event WHERE id = %s", [last.pk])
        cursor.execute(
            "UPDATE deployments_deployment SET event_count = event_count - 1, last_event_hash = %s WHERE id = %s",
            [last.prev_hash, deployment.pk],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
    report = verify_chain(deployment.pk)
    assert not report.ok and "events were removed" in report.problem


def test_a_forged_or_edited_checkpoint_is_named(crew):
    deployment, people = crew
    checkpoint = checkpoints.take_checkpoint(deployment.pk, reason=CheckpointReason.PERIODIC)
    assert verify_chain(deployment.pk).ok
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE deployments_chaincheckpoint SET seq = seq - 1 WHERE id = %s", [checkpoint.pk])
        cursor.execute("SET LOCAL session_replication_role = origin")
    report = verify_chain(deployment.pk)
    assert not report.ok and "signature that does not verify" in report.problem


def test_checkpoints_are_signed_with_the_report_key_or_else_the_secret_key(crew, monkeypatch):
    deployment, _ = crew
    signed = checkpoints.take_checkpoint(deployment.pk, reason=CheckpointReason.PERIODIC)
    assert signed.signer.startswith("report signing key SHA-256 ")

    def broken():
        raise RuntimeError("no key today")

    monkeypatch.setattr(checkpoints, "_provider", broken)
    fallback = checkpoints.take_checkpoint(deployment.pk, reason=CheckpointReason.PERIODIC)
    assert fallback.signer == checkpoints.SECRET_KEY_SIGNER
    report = verify_chain(deployment.pk)
    # The fallback verifies; the report-key one cannot be checked without the key, and says so.
    assert report.ok and any("does not hold" in note for note in report.notes)


@pytest.mark.parametrize(
    "statement", ["UPDATE deployments_chaincheckpoint SET seq = 1", "DELETE FROM deployments_chaincheckpoint"]
)
def test_checkpoints_are_append_only(crew, statement):
    deployment, _ = crew
    checkpoints.take_checkpoint(deployment.pk, reason=CheckpointReason.PERIODIC)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
