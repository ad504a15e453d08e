"""Where apps above ``checklists`` add a section to a runbook version's page.

Like ``reports.sections.provide`` and ``deployments.hooks``: an app registers once, in its
``AppConfig.ready()``, and the version page shows what it returns, knowing nothing of it::

    from checklists import hooks

    hooks.version_section(lambda request, version: render_to_string("rollouts/runbook_plan.html#section", ...))

A provider returns a ``(link label, anchor id, html)`` triple, or None to show nothing.
The page links each section from its actions bar.
"""

from __future__ import annotations

from collections.abc import Callable

_version_sections: list[Callable] = []


def version_section(provider: Callable) -> None:
    if provider not in _version_sections:  # ready() may run twice in tests; register once
        _version_sections.append(provider)


def version_sections(request, version) -> list[tuple[str, str, str]]:
    return [section for provider in _version_sections if (section := provider(request, version))]
