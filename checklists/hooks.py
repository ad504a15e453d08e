"""Where the apps above ``checklists`` plug into runbooks.

Like ``reports.sections.provide`` and ``deployments.hooks``: an app registers once, in its
``AppConfig.ready()``, and ``checklists`` imports nothing of it::

    from checklists import hooks

    hooks.validate_actions_with(validate_action)  # (action, config) → None, or ValidationError naming the field
    hooks.version_section(lambda request, version: render_to_string("rollouts/runbook_plan.html#section", ...))

A runbook step may carry a ```` ```warroom ```` block that names automated work (a backup, a
smoke check, a rollout): ``checklists`` stores it, the app that runs such work judges it.
A version-page section provider returns a ``(link label, anchor id, html)`` triple, or None to
show nothing; the page links each section from its actions bar.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError

_action_validators: list[Callable] = []
_version_sections: list[Callable] = []


def validate_actions_with(validator: Callable) -> None:
    if validator not in _action_validators:  # ready() may run twice in tests; register once
        _action_validators.append(validator)


def validate_action(action: str, config: dict) -> None:
    """Refuse a step action no installed app runs, or one its app finds wrong (ValidationError)."""
    if not _action_validators:
        raise ValidationError({"action": "No installed app runs automated steps: remove the warroom block."})
    for validator in _action_validators:
        validator(action, config)


def version_section(provider: Callable) -> None:
    if provider not in _version_sections:  # ready() may run twice in tests; register once
        _version_sections.append(provider)


def version_sections(request, version) -> list[tuple[str, str, str]]:
    return [section for provider in _version_sections if (section := provider(request, version))]
