"""Signed checkpoints: the head of each deployment's chain, anchored outside the chain.

The hash chain proves that the events agree with each other; it cannot prove that
they are the events that were written, because anyone who can write the table can
rewrite every event and recompute every hash. A checkpoint is a signed statement
"deployment D's chain ended in event #N with hash H at time T", taken by beat every
``WARROOM_CHECKPOINT_SECONDS`` for every deployment whose head moved, and on every
signed report. ``verify_chain`` checks the chain against every checkpoint and names the
first one it no longer matches.

The signing key: the reports app registers Warroom's report-signing key
(``use_signing_key`` in its ``AppConfig.ready``); without it, or when it cannot be
loaded, an HMAC keyed with ``DJANGO_SECRET_KEY`` signs — weaker (anyone holding the
secret key can forge it) but still outside the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from deployments.models import ChainCheckpoint, CheckpointReason, Deployment, Event

log = logging.getLogger(__name__)

SECRET_KEY_SIGNER = "hmac-sha256:DJANGO_SECRET_KEY"  # noqa: S105 (names the key, is not one)


@dataclass(frozen=True)
class CheckpointKey:
    name: str  # stored with each checkpoint: which key to verify it with
    sign: Callable[[bytes], bytes]
    verify: Callable[[bytes, bytes], bool]


_provider: Callable[[], CheckpointKey] | None = None


def use_signing_key(provider: Callable[[], CheckpointKey]) -> None:
    """Register the preferred key (the reports app: its report-signing key)."""
    global _provider
    _provider = provider


def _secret_key_hmac() -> CheckpointKey:
    key = hashlib.sha256(b"warroom-checkpoint:" + settings.SECRET_KEY.encode()).digest()

    def sign(data: bytes) -> bytes:
        return hmac.new(key, data, hashlib.sha256).digest()

    return CheckpointKey(SECRET_KEY_SIGNER, sign, lambda data, signature: hmac.compare_digest(sign(data), signature))


def signing_key() -> CheckpointKey:
    if _provider is not None:
        try:
            return _provider()
        except Exception:
            log.warning("the report signing key cannot sign checkpoints; using the secret-key HMAC instead", exc_info=True)
    return _secret_key_hmac()


def _known_keys() -> dict[str, CheckpointKey]:
    keys = {SECRET_KEY_SIGNER: _secret_key_hmac()}
    if _provider is not None:
        try:
            preferred = _provider()
            keys[preferred.name] = preferred
        except Exception:
            log.warning("the report signing key cannot be loaded to verify checkpoints", exc_info=True)
    return keys


def statement(*, deployment_id: int, seq: int, event_id: int, head_hash: str, reason: str, taken_at) -> bytes:
    """The exact bytes a checkpoint signs."""
    return "\n".join(
        ["warroom-checkpoint:v1", str(deployment_id), str(seq), str(event_id), head_hash, reason, taken_at.isoformat()]
    ).encode()


def _statement_of(checkpoint: ChainCheckpoint) -> bytes:
    return statement(
        deployment_id=checkpoint.deployment_id,
        seq=checkpoint.seq,
        event_id=checkpoint.head_event_id,
        head_hash=checkpoint.head_hash,
        reason=checkpoint.reason,
        taken_at=checkpoint.taken_at,
    )


def take_checkpoint(deployment_id: int, *, reason: str, seq: int | None = None, head_hash: str | None = None):
    """Sign and store the chain head (the current one, or event #``seq`` if given).

    With ``seq``/``head_hash`` (a report's final event) the checkpoint is taken only if
    the log still has that event with that hash. Returns the checkpoint, or None when
    there is nothing (or nothing consistent) to anchor.
    """
    if seq is None:
        seq, head_hash = Deployment.objects.filter(pk=deployment_id).values_list("event_count", "last_event_hash").first() or (
            0,
            "",
        )
    if not seq:
        return None
    event = Event.objects.filter(deployment_id=deployment_id, seq=seq).only("pk", "hash").first()
    if event is None or (head_hash is not None and event.hash != head_hash):
        log.warning("no checkpoint for deployment %s: event #%s is not what was asked to anchor", deployment_id, seq)
        return None
    key = signing_key()
    taken_at = timezone.now()
    data = statement(
        deployment_id=deployment_id, seq=seq, event_id=event.pk, head_hash=event.hash, reason=reason, taken_at=taken_at
    )
    return ChainCheckpoint.objects.create(
        deployment_id=deployment_id,
        head_event_id=event.pk,
        seq=seq,
        head_hash=event.hash,
        reason=reason,
        taken_at=taken_at,
        signer=key.name,
        signature=base64.b64encode(key.sign(data)).decode(),
    )


def checkpoint_moved_heads() -> int:
    """Beat: one checkpoint for every deployment whose chain grew since its last checkpoint."""
    moved = (
        Deployment.objects.annotate(anchored=Coalesce(Max("checkpoints__seq"), 0))
        .filter(event_count__gt=F("anchored"))
        .values_list("pk", flat=True)
    )
    taken = 0
    for deployment_id in moved:
        with transaction.atomic():
            if take_checkpoint(deployment_id, reason=CheckpointReason.PERIODIC) is not None:
                taken += 1
    return taken


@dataclass
class CheckpointProblem:
    checkpoint: ChainCheckpoint
    problem: str


def check_against_checkpoints(
    deployment_id: int, hashes: dict[int, str], count: int
) -> tuple[CheckpointProblem | None, list[str]]:
    """Compare a verified chain (``hashes``: seq → hash of every checkpointed seq) with the checkpoints.

    Returns the first checkpoint that does not hold (in chain order) and notes about
    checkpoints that cannot be checked here (signed by a key this Warroom no longer holds).
    """
    keys = _known_keys()
    notes = []
    for checkpoint in ChainCheckpoint.objects.filter(deployment_id=deployment_id).order_by("seq", "id"):
        taken = f"{checkpoint.taken_at:%Y-%m-%d %H:%M:%S} UTC"
        when = f"checkpoint #{checkpoint.pk} ({checkpoint.get_reason_display().lower()}, {taken})"
        key = keys.get(checkpoint.signer)
        if key is None:
            notes.append(f"{when} is signed by a key this Warroom does not hold ({checkpoint.signer}); not checked")
            continue
        try:
            genuine = key.verify(_statement_of(checkpoint), base64.b64decode(checkpoint.signature, validate=True))
        except Exception:
            genuine = False
        if not genuine:
            return CheckpointProblem(
                checkpoint, f"{when} has a signature that does not verify: the checkpoints were tampered with"
            ), notes
        if checkpoint.seq > count:
            return CheckpointProblem(
                checkpoint, f"{when} recorded {checkpoint.seq} events, the log now has {count}: events were removed"
            ), notes
        actual = hashes.get(checkpoint.seq)
        if actual != checkpoint.head_hash:
            return CheckpointProblem(
                checkpoint,
                f"{when} recorded event #{checkpoint.seq} with hash {checkpoint.head_hash[:12]}…, the log now has "
                f"{(actual or '')[:12]}…: the log was rewritten after that checkpoint",
            ), notes
    return None, notes


def checkpointed_seqs(deployment_id: int) -> set[int]:
    return set(ChainCheckpoint.objects.filter(deployment_id=deployment_id).values_list("seq", flat=True))
