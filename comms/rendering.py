"""Message templates, rendered by Django's template engine in a sandbox.

A template sees a whitelisted context of plain strings only — the deployment's name,
service, version, environment, T-0, maintenance window, status-page URL and, for
incident alerts, the incident — never a model object, so nothing reaches other rows,
settings or methods. Templates are checked when saved (and again before every render):
only ``{{ variables }}`` from the whitelist, a few harmless filters and ``{% if %}``;
anything else is refused with a message that names it.

A template is plain text, never markup — what its author typed and what the variables
hold alike. It is rendered once, as text, and then escaped whole for each channel:
- the e-mail's plain-text part: the text as rendered;
- the e-mail's HTML part (and every preview): the text HTML-escaped, line breaks kept, so
  an ``<img onerror=…>`` typed into a body shows as those characters and never runs;
- chat webhooks: the three characters Slack's markup reserves (``& < >``) escaped, so
  neither a value nor the body can open a link or mention the channel.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, TextNode, VariableNode
from django.template.defaulttags import IfNode
from django.utils.html import linebreaks

# Every variable a template may use, with what it says (shown in the editor).
VARIABLES = {
    "deployment.name": "Deployment name",
    "deployment.service": "Service",
    "deployment.version": "Version being deployed",
    "deployment.environment": "Environment (e.g. production)",
    "deployment.state": "Current state (e.g. In progress)",
    "deployment.t0": "Planned T-0 in the deployment's time zone",
    "deployment.t0_utc": "Planned T-0 in UTC",
    "deployment.timezone": "The deployment's time zone",
    "window.start": "Maintenance window start (local time)",
    "window.end": "Maintenance window end (local time)",
    "status_page_url": "Public status page (empty unless the lead enabled it)",
    "incident.number": "Incident number, e.g. INC-3 (incident alerts)",
    "incident.severity": "Incident severity, e.g. SEV1",
    "incident.title": "Incident title",
    "incident.status": "Incident status",
    "incident.impact": "Incident impact",
    "incident.description": "Incident description",
    "incident.url": "War-room link for the incident (for the team, not for users)",
}
ALLOWED_FILTERS = {"default", "upper", "lower", "title", "capfirst", "truncatechars", "truncatewords", "yesno"}
MAX_SUBJECT = 200
MAX_BODY = 20000


class TemplateProblem(ValueError):
    """A message template cannot be used; the message names what is wrong."""


# No loaders, no libraries: {% include %}, {% extends %} and {% load %} have nothing to
# reach even if the checks below were bypassed. Invalid variables render as nothing.
_ENGINE = Engine(dirs=[], app_dirs=False, loaders=[], libraries={}, autoescape=False, debug=False)


def _expressions_of_condition(condition):
    """The FilterExpressions inside an {% if %} condition tree (smartif operators/literals)."""
    if condition is None:
        return
    value = getattr(condition, "value", None)
    if isinstance(value, FilterExpression):
        yield value
        return
    for part in (getattr(condition, "first", None), getattr(condition, "second", None)):
        if part is not None:
            yield from _expressions_of_condition(part)


def _check_expression(expression: FilterExpression, problems: list[str]) -> None:
    var = expression.var
    lookups = getattr(var, "lookups", None)
    if lookups is not None:
        name = ".".join(lookups)
        if name not in VARIABLES:
            problems.append(f"unknown variable {{{{ {name} }}}}")
    for func, args in expression.filters:
        name = getattr(func, "_filter_name", None) or func.__name__
        if name not in ALLOWED_FILTERS:
            problems.append(f"filter |{name} is not allowed")
        for is_lookup, arg in args:
            if is_lookup and getattr(arg, "lookups", None) is not None and ".".join(arg.lookups) not in VARIABLES:
                problems.append(f"unknown variable {'.'.join(arg.lookups)} in a filter argument")


def _check_nodes(nodelist, problems: list[str]) -> None:
    for node in nodelist:
        if isinstance(node, TextNode):
            continue
        if isinstance(node, VariableNode):
            _check_expression(node.filter_expression, problems)
        elif isinstance(node, IfNode):
            for condition, body in node.conditions_nodelists:
                for expression in _expressions_of_condition(condition):
                    _check_expression(expression, problems)
                _check_nodes(body, problems)
        else:
            tag = getattr(node, "token", None)
            shown = tag.contents.split()[0] if tag is not None and tag.contents else type(node).__name__
            problems.append(f"the tag {{% {shown} %}} is not allowed (only {{{{ variables }}}} and {{% if %}})")


def check_template(source: str, *, what: str = "template") -> None:
    """Raise TemplateProblem naming every unknown variable, tag or filter in ``source``."""
    try:
        compiled = _ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"The {what} does not parse: {exc}") from None
    problems: list[str] = []
    _check_nodes(compiled.nodelist, problems)
    if problems:
        unique = list(dict.fromkeys(problems))
        raise TemplateProblem(
            f"The {what} uses {'; '.join(unique)}. Available: " + ", ".join(f"{{{{ {v} }}}}" for v in VARIABLES) + "."
        )


def check_message(subject: str, body: str) -> None:
    if not subject.strip():
        raise TemplateProblem("A message needs a subject.")
    if len(subject) > MAX_SUBJECT:
        raise TemplateProblem(f"The subject is too long ({MAX_SUBJECT} characters at most).")
    if "\n" in subject or "\r" in subject:
        raise TemplateProblem("The subject must be one line.")
    if not body.strip():
        raise TemplateProblem("A message needs a body.")
    if len(body) > MAX_BODY:
        raise TemplateProblem(f"The body is too long ({MAX_BODY:,} characters at most).")
    check_template(subject, what="subject")
    check_template(body, what="body")


# --- the context ------------------------------------------------------------------------


def _local(value, zone_name: str) -> str:
    if value is None:
        return ""
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def build_context(deployment, *, incident=None, status_page_url: str = "", incident_url: str = "") -> dict:
    """The whole of what a template may see: strings, built here from named fields only."""
    zone = deployment.timezone_name
    context = {
        "deployment": {
            "name": deployment.name,
            "service": deployment.service,
            "version": deployment.version_label,
            "environment": deployment.environment,
            "state": deployment.get_state_display(),
            "t0": _local(deployment.planned_t0, zone),
            "t0_utc": _local(deployment.planned_t0, "UTC"),
            "timezone": zone,
        },
        "window": {"start": _local(deployment.window_start, zone), "end": _local(deployment.window_end, zone)},
        "status_page_url": status_page_url,
        "incident": {"number": "", "severity": "", "title": "", "status": "", "impact": "", "description": "", "url": ""},
    }
    if incident is not None:
        context["incident"] = {
            "number": f"INC-{incident.number}",
            "severity": incident.get_severity_display().split(" ")[0],
            "title": incident.title,
            "status": incident.get_status_display(),
            "impact": incident.impact,
            "description": incident.description,
            "url": incident_url,
        }
    return context


# --- rendering --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    slack: str


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_text(source: str, context: dict) -> str:
    """The template rendered as plain text: nothing in it is markup, nothing is escaped yet."""
    check_template(source)
    rendered = _ENGINE.from_string(source).render(Context(context, autoescape=False))
    # A template's output is marked "safe" by Django; this text is not: a page that shows it
    # must escape it. "".join gives a plain str without that mark.
    return "".join([rendered])


def render_message(subject: str, body: str, context: dict) -> Rendered:
    """Subject and body in every form a channel needs, each escaped for where it goes."""
    check_message(subject, body)
    subject_text = " ".join(render_text(subject, context).split())[:MAX_SUBJECT]
    text = render_text(body, context)
    return Rendered(
        subject=subject_text,
        text=text,
        html=linebreaks(text, autoescape=True),
        slack=f"*{_slack_escape(subject_text)}*\n{_slack_escape(text)}",
    )
