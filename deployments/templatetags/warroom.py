"""Template helpers: safe Markdown and times that every viewer reads in their own zone."""

from datetime import UTC

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

from checklists.models import StepAction

register = template.Library()

# Raw HTML in runbooks is shown as text, never rendered; markdown-it refuses
# javascript: and data: links by itself.
_markdown = MarkdownIt("commonmark", {"html": False}).enable("table")


@register.filter
def inline_md(text: str) -> str:
    return mark_safe(_markdown.renderInline(text or ""))  # noqa: S308 (html disabled: markdown-it escapes)


@register.filter
def md(text: str) -> str:
    return mark_safe(_markdown.render(text or ""))  # noqa: S308 (html disabled: markdown-it escapes)


@register.simple_tag
def moment(value, fmt="datetime"):
    """A <time> element: UTC in the markup, turned into the viewer's zone by warroom.js.

    Pushed fragments are shared by every screen, so the server cannot know the
    viewer's zone there; the page script localises every <time data-local>.
    """
    if value is None:
        return "—"
    utc = value.astimezone(UTC)
    text = utc.strftime("%H:%M UTC") if fmt == "time" else utc.strftime("%Y-%m-%d %H:%M UTC")
    return format_html('<time datetime="{}" data-local="{}">{}</time>', utc.isoformat(), fmt, text)


@register.filter
def action_label(action: str) -> str:
    return {"maintenance_on": "maintenance on", "maintenance_off": "maintenance off"}.get(
        action, StepAction(action).label.lower() if action in StepAction.values else action
    )


@register.filter
def rest_of_100(value) -> int:
    return 100 - int(value or 0)


@register.filter
def tclock(value, t0):
    """T-offset of a moment as the runbooks write it: T-01:30 or T+00:05."""
    if value is None or t0 is None:
        return ""
    seconds = int((value - t0).total_seconds())
    sign = "+" if seconds >= 0 else "-"
    seconds = abs(seconds)
    return f"T{sign}{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


@register.filter
def offset_label(minutes):
    if minutes is None:
        return ""
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"T{sign}{minutes // 60}h{minutes % 60:02d}" if minutes >= 60 else f"T{sign}{minutes}m"
