"""The runbooks' own messages as templates: maintenance notice (T-24h), deployment
starting (T-0), go-live and rollback e-mails (expense-accounts-procedure.md, steps 4.2
and R7) and the incident alert. Used by seed_demo; a lead can add them to any deployment."""

from __future__ import annotations

from django.db import transaction

from comms import services
from comms.models import Channel, MessageTemplate, TemplateKind, Transport

SIGNATURE = "Best regards,\nThe {{ deployment.service }} team"

RUNBOOK_TEMPLATES = [
    {
        "name": "Maintenance notice",
        "kind": TemplateKind.MAINTENANCE_NOTICE,
        "offset_minutes": -24 * 60,
        "public": True,
        "subject": "Scheduled maintenance: {{ deployment.service }} on {{ deployment.t0 }}",
        "body": "Dear Users,\n\n"
        "We will perform scheduled maintenance on {{ deployment.service }} to release version {{ deployment.version }}.\n\n"
        "{% if window.start %}Maintenance window: {{ window.start }} – {{ window.end }}"
        "{% else %}Start: {{ deployment.t0 }}{% endif %}\n\n"
        "During this time the service may be unavailable."
        "{% if status_page_url %} You can follow the progress at {{ status_page_url }}{% endif %}\n\n"
        "Thank you for your patience.\n\n" + SIGNATURE,
    },
    {
        "name": "Deployment starting",
        "kind": TemplateKind.STARTING,
        "offset_minutes": 0,
        "public": True,
        "subject": "Maintenance started: {{ deployment.service }}",
        "body": "Dear Users,\n\n"
        "The scheduled maintenance of {{ deployment.service }} has started."
        "{% if window.end %} We expect to be done by {{ window.end }}.{% endif %}\n\n"
        "{% if status_page_url %}Progress: {{ status_page_url }}\n\n{% endif %}" + SIGNATURE,
    },
    {
        "name": "Go-live notification",
        "kind": TemplateKind.GO_LIVE,
        "offset_minutes": 125,
        "public": True,
        "subject": "System Maintenance Complete - {{ deployment.service }} {{ deployment.version }} Now Available",
        "body": "Dear Users,\n\n"
        "The scheduled system maintenance has been completed successfully.\n\n"
        "Version {{ deployment.version }} of {{ deployment.service }} is now available.\n\n"
        "If you have any questions or encounter any issues, please contact support.\n\n"
        "Thank you for your patience during the maintenance window.\n\n" + SIGNATURE,
    },
    {
        "name": "Rollback / extended maintenance",
        "kind": TemplateKind.ROLLBACK,
        "offset_minutes": None,
        "public": True,
        "subject": "System Maintenance Extended - Service Restored",
        "body": "Dear Users,\n\n"
        "Due to technical issues discovered during our maintenance, we have rolled back\n"
        "the planned updates and restored the system to its previous state.\n\n"
        "The system is now fully operational. We apologize for the extended downtime.\n\n"
        "We will reschedule the maintenance after resolving the issues.\n\n"
        "Thank you for your patience and understanding.\n\n" + SIGNATURE,
    },
    {
        "name": "Incident alert",
        "kind": TemplateKind.INCIDENT_ALERT,
        "offset_minutes": None,
        "public": False,
        "subject": "[{{ incident.severity }}] {{ incident.number }} during {{ deployment.name }}: {{ incident.title }}",
        "body": "{{ incident.severity }} incident {{ incident.number }} during {{ deployment.name }}\n"
        "({{ deployment.service }} {{ deployment.version }} → {{ deployment.environment }}).\n\n"
        "{{ incident.title }}\nStatus: {{ incident.status }}\n"
        "Impact: {{ incident.impact|default:'not stated yet' }}\n\n{{ incident.description }}\n\n"
        "You are on the escalation list. Acknowledge in the war room: {{ incident.url }}\n",
    },
]


@transaction.atomic
def add_runbook_templates(deployment, lead, *, users_address: str = "") -> int:
    """Add the templates this deployment does not have yet (by name). Returns how many."""
    channels = []
    if users_address:
        channel = Channel.objects.filter(deployment=deployment, name="All users").first()
        if channel is None:
            channel = services.save_channel(
                deployment, lead, name="All users", transport=Transport.EMAIL, recipients=users_address
            )
        channels = [channel.pk]
    sender = deployment.roles.filter(name__icontains="product owner").first()
    existing = set(MessageTemplate.objects.filter(deployment=deployment).values_list("name", flat=True))
    added = 0
    for spec in RUNBOOK_TEMPLATES:
        if spec["name"] in existing:
            continue
        services.save_template(
            deployment,
            lead,
            name=spec["name"],
            kind=spec["kind"],
            subject=spec["subject"],
            body=spec["body"],
            offset_minutes=spec["offset_minutes"],
            channel_ids=channels if spec["kind"] != TemplateKind.INCIDENT_ALERT else [],
            sender_role_id=sender.pk if sender and spec["public"] else None,
            is_public=spec["public"],
        )
        added += 1
    return added
