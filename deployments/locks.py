"""The one lock order. Read this before a service function locks a row.

Every change to a deployment — by a person, a pipeline, a worker or beat — takes the
**deployment row first** (``lock_deployment``: ``SELECT … FOR NO KEY UPDATE``), and only
then the rows the change is about (participant, gate, approval, item, rollout plan, task
run, incident, message template, report job…), several rows of one kind in primary-key
order.

Why this order: appending to the event log locks the deployment row anyway (the hash
chain needs the head), so every change is already serialized on it. Taken *last*, as it
used to be, it made cycles: a vote held its gate and waited for the deployment while a
tick held the deployment and waited for the gate ("deadlock detected" under load). Taken
*first*, two changes to one deployment queue on one row and can never wait for each
other in a circle. ``FOR NO KEY UPDATE`` (not ``FOR UPDATE``) so rows that merely refer
to the deployment (events, votes, readings) can still be inserted by others meanwhile.

Work that spans deployments (beat's sweeps, the rollout controller's tick) takes one
deployment per transaction, in this same order.
"""

from __future__ import annotations

from django.db import models

from deployments.models import Deployment


def lock_deployment(deployment_id: int) -> Deployment:
    """Step 1 of every change: the deployment row, locked until the transaction ends."""
    return Deployment.objects.select_for_update(no_key=True).get(pk=deployment_id)


def lock_deployment_of(model: type[models.Model], pk) -> Deployment:
    """Step 1 when the caller knows only a row of the deployment (an item, a gate, a run…).

    Raises ``model.DoesNotExist`` for an unknown row, like the ``get`` it precedes.
    """
    deployment_id = model.objects.filter(pk=pk).values_list("deployment_id", flat=True).first()
    if deployment_id is None:
        raise model.DoesNotExist(f"No {model._meta.verbose_name} {pk}")
    return lock_deployment(deployment_id)
