"""No string a user typed is ever markup, wherever it is shown.

Every free-text column of every Warroom table (names, titles, notes, reasons, template
bodies, incident texts, lessons learned, log lines, ...) and every person's name is set to
an injection vector; then every page and fragment the permission table lists is fetched as
someone who may see it, and parsed as a browser would. A vector that became an element or
an attribute carries ``data-xss``: finding that attribute anywhere is a hole. Pages added
later are covered by their permission-table row; columns added later by the walk over the
models. Downloads that are not HTML (Markdown, JSON, text) must not be served as HTML.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Value
from django.db.models.functions import Cast, Concat
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from checklists.models import RunbookEdit
from deployments import services
from deployments.models import ChainCheckpoint, Event, Item
from deployments.services import InvalidChange
from incidents import services as incident_services
from reports.record import build_record
from reports.rendering import render_html, render_markdown
from tests.test_permission_table import (  # noqa: F401 (fixtures used by name)
    ANONYMOUS,
    ROWS,
    with_incident,
    with_plan,
    with_run,
    with_scheduled,
    with_status_page,
    world,
    world_base,
)

# Closes an attribute, a textarea or a title, then opens an element with a handler.
VECTOR = "\"'></textarea></title><img src=x onerror=alert(1) data-xss>"
SHORT_VECTOR = "<b data-xss>"
APPS = ("deployments", "checklists", "approvals", "comms", "incidents", "reports", "rollouts")
# Columns that are not free text a person types: hashes, tokens, time-zone names, internal
# action codes, and administrator-defined addresses the worker acts on (those are validated
# on save and would make the page fail for a different reason).
NOT_TYPED = {
    "timezone_name",
    "last_event_hash",
    "prev_hash",
    "hash",
    "head_hash",
    "signature",
    "source_sha256",
    "sha256",
    "final_hash",
    "evidence_digest",
    "prefix",
    "action",
    "object_type",
    "object_id",
    "zone",
    "url",
    "base_url",
    "secret_env",
    "database_url_env",
    "database_url_file",
    "migrate_cwd",
    "maintenance_file",
    "maintenance_url",
    "upstream_file",
    "stable_server",
    "canary_server",
}


def typed_columns():
    """(model, field name, value) for every free-text column of Warroom's own tables."""
    for label in APPS:
        for model in apps.get_app_config(label).get_models():
            for f in model._meta.concrete_fields:
                if not isinstance(f, models.CharField | models.TextField) or f.choices or f.unique or f.primary_key:
                    continue
                if f.name in NOT_TYPED:
                    continue
                room = f.max_length - PK_ROOM if f.max_length is not None else None
                if room is not None and room < len(SHORT_VECTOR):
                    continue
                value = VECTOR if room is None or room >= len(VECTOR) else SHORT_VECTOR
                yield model, f.name, value


# Tables whose triggers refuse UPDATE (the event log, its checkpoints, the runbook edit log).
APPEND_ONLY = {Event, ChainCheckpoint, RunbookEdit}
PK_ROOM = 12  # each row's id is appended, so names that must be unique stay unique


def poison_everything(w) -> None:
    for model, name, value in typed_columns():
        if model in APPEND_ONLY:
            continue  # they refuse updates: their texts are poisoned below the way they really get there, by acting
        model.objects.update(**{name: Concat(Value(value), Cast("pk", output_field=models.CharField()))})
    get_user_model().objects.update(first_name=VECTOR, last_name=SHORT_VECTOR)
    # Events written now carry poisoned names, notes and titles in their summaries.
    item = Item.objects.filter(deployment=w.d).order_by("pk").first()
    services.update_item(item.pk, w.users["lead"], revision=item.revision, checked=True, note=VECTOR)
    incident_services.raise_incident(w.d.pk, w.users["po"], severity="sev3", title=VECTOR[:150], description=VECTOR)


class InjectionFinder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if "data-xss" in names:
            self.found.append(f"line {self.getpos()[0]}: <{tag} {attrs}>")
        for name, value in attrs:
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")

    handle_startendtag = handle_starttag


def injected_elements(html: str) -> list[str]:
    finder = InjectionFinder()
    finder.feed(html)
    finder.close()
    return finder.found


def test_the_finder_finds_what_it_looks_for():
    """The check itself can fail: raw vectors are found, escaped ones are not."""
    assert injected_elements(f"<p>{VECTOR}</p>")
    assert injected_elements(f'<input value="{VECTOR}">')
    assert injected_elements(f"<p>{SHORT_VECTOR}</p>")
    assert injected_elements('<a href=" javascript:alert(1)">x</a>')
    assert not injected_elements(f'<p>{escape(VECTOR)}</p><input value="{escape(VECTOR)}">')


def test_every_typed_column_is_poisoned_with_something_visible():
    columns = {(m.__name__, n) for m, n, _ in typed_columns()}
    # The texts people type most: if the walk missed these, it would prove little.
    for expected in [
        ("Deployment", "name"),
        ("Item", "note"),
        ("Gate", "criteria"),
        ("Vote", "reason"),
        ("MessageTemplate", "body"),
        ("Incident", "description"),
        ("Review", "lessons_learned"),
        ("ActionItem", "text"),
        ("TaskLogLine", "text"),
        ("RunbookVersion", "title"),
    ]:
        assert expected in columns


def _viewers(row) -> list[str]:
    """Who sees the page: the lead (who sees the most) and one more person who may, if any."""
    return [p for p in ("lead", "po", "staff", ANONYMOUS) if row.expect.get(p) == 200][:2]


PAGES = [(row, persona) for row in ROWS if row.method == "GET" for persona in _viewers(row)]


def _with_everything(w):
    """Objects of every kind on the deployment, so every panel has something to show."""
    with_run(w)
    with_scheduled(w)
    with_status_page(w)
    with_incident(w)
    with_plan("running")(w)


@pytest.mark.parametrize(("row", "persona"), PAGES, ids=[f"{row.key}-{persona}" for row, persona in PAGES])
def test_no_typed_string_becomes_markup_on_any_page(world, row, persona):  # noqa: F811
    _with_everything(world)
    if row.setup:
        try:
            with transaction.atomic():
                row.setup(world)
        except (IntegrityError, InvalidChange, ValidationError):
            pass  # the row's own objects exist already: _with_everything made them
    kwargs = row.kwargs(world)
    poison_everything(world)
    client = Client()
    if persona != ANONYMOUS:
        client.force_login(world.users[persona])
    response = client.get(reverse(row.name, kwargs=kwargs))
    assert response.status_code == 200, f"{row.key}: {response.status_code} {response.content[:300]!r}"
    content_type = response.get("Content-Type", "")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if "html" not in content_type:
        assert response.get("X-Content-Type-Options") == "nosniff", f"{row.key} may be sniffed as HTML"
        return
    text = body.decode("utf-8", errors="replace")
    found = injected_elements(text)
    assert not found, f"{row.key}: typed text became markup: {found[:3]}"


def test_no_typed_string_becomes_markup_in_the_report(world):  # noqa: F811
    """The HTML the PDF is printed from, and the Markdown export, after poisoning."""
    _with_everything(world)
    poison_everything(world)
    record = build_record(world.d.pk)
    html = render_html(record, paper="a4")
    assert not injected_elements(html)
    assert "onerror=alert(1)" in html.replace("&#x27;", "'").replace("&quot;", '"').replace("&lt;", "<").replace(
        "&gt;", ">"
    )  # the text is there, as text
    markdown = render_markdown(record)
    assert "<img" not in markdown  # Markdown renderers pass raw HTML through: it must be escaped
