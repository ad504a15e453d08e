"""Message templates: a sandboxed Django template engine, whitelisted context, hostile values escaped."""

import pytest
from django.conf import settings
from django.utils.html import conditional_escape

from comms import services
from comms.models import MessageTemplate
from comms.rendering import TemplateProblem, check_template, render_message
from deployments.models import Deployment
from deployments.services import InvalidChange
from tests.comms.conftest import email_channel, simple_template

HOSTILE = '<script>alert("x")</script> & <@channel> {{ settings.SECRET_KEY }} {% debug %}'


@pytest.fixture
def hostile(crew):
    """A deployment whose free-text fields are hostile (a lead can type anything there)."""
    deployment, people = crew
    Deployment.objects.filter(pk=deployment.pk).update(name=HOSTILE, version_label="<img src=x onerror=alert(1)>")
    deployment.refresh_from_db()
    return deployment, people


def test_hostile_values_are_escaped_for_html_and_chat_and_never_evaluated(hostile):
    deployment, people = hostile
    template = simple_template(deployment, people["lead"], [email_channel(deployment, people["lead"], "users@example.com")])
    rendered = services.preview(template, people["po"])

    assert "<script>" not in rendered.html and "<img" not in rendered.slack
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;@channel&gt;" in rendered.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered.slack  # the subject heads the chat message
    # Slack-compatible text: & < > escaped (no link, no @channel), quotes left readable.
    assert '&lt;script&gt;alert("x")&lt;/script&gt; &amp; &lt;@channel&gt;' in rendered.slack
    assert "<@channel>" not in rendered.slack
    # Plain text is not markup: the value is shown as typed, but as a value only.
    assert HOSTILE in rendered.text
    for form in (rendered.subject, rendered.text, rendered.html, rendered.slack):
        assert settings.SECRET_KEY not in form
        assert "sys.modules" not in form and "DEBUG" not in form


def test_subject_is_one_line_even_with_a_newline_in_a_value(crew):
    deployment, people = crew
    Deployment.objects.filter(pk=deployment.pk).update(service="pay\r\nBcc: victim@example.com")
    deployment.refresh_from_db()
    template = simple_template(deployment, people["lead"], [])
    rendered = services.preview(template, people["lead"])
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("Hi {{ deployment.runbook_version }}", "unknown variable {{ deployment.runbook_version }}"),
        ("{{ deployment.created_by.password }}", "unknown variable {{ deployment.created_by.password }}"),
        ("{{ user.email }}", "unknown variable {{ user.email }}"),
        ("{{ deployment.name|safe }}", "filter |safe is not allowed"),
        ("{{ deployment.name.upper }}", "unknown variable {{ deployment.name.upper }}"),
        ("{% load static %}", "is not a registered tag library"),
        ('{% include "base.html" %}', "the tag {% include %} is not allowed"),
        ("{% debug %}", "the tag {% debug %} is not allowed"),
        ('{% url "login" %}', "the tag {% url %} is not allowed"),
        ("{% if deployment.secret %}x{% endif %}", "unknown variable {{ deployment.secret }}"),
        ("{{ incident.title|default:deployment.owner }}", "unknown variable deployment.owner in a filter argument"),
        ("{% if deployment.name %}unclosed", "does not parse"),
    ],
)
def test_unknown_variables_tags_and_filters_are_refused_at_save(crew, body, complaint):
    deployment, people = crew
    with pytest.raises(InvalidChange) as refused:
        services.save_template(deployment, people["lead"], name="Bad", subject="Hello", body=body)
    assert complaint in str(refused.value)
    assert not MessageTemplate.objects.filter(deployment=deployment).exists()


def test_the_error_lists_what_is_available(crew):
    deployment, people = crew
    with pytest.raises(InvalidChange, match=r"Available: .*\{\{ deployment\.version \}\}.*\{\{ window\.end \}\}"):
        services.save_template(deployment, people["lead"], name="Bad", subject="{{ deployment.versoin }}", body="x")


def test_whitelisted_variables_conditions_and_filters_render(crew):
    deployment, people = crew
    body = (
        "{{ deployment.service|upper }} {{ deployment.version }} on {{ deployment.environment }} at {{ deployment.t0 }}"
        "{% if window.start %} window{% else %} no window{% endif %}{% if status_page_url %} {{ status_page_url }}{% endif %}"
    )
    template = services.save_template(deployment, people["lead"], name="Ok", subject="{{ deployment.name }}", body=body)
    rendered = services.preview(template, people["qa"])
    assert rendered.subject == "Release 1.2"
    assert rendered.text.startswith("SMARTWALLET 1.2.0 on production at ")
    assert rendered.text.endswith(" no window")
    assert "CET" in rendered.text or "CEST" in rendered.text  # T-0 in the deployment's zone (Europe/Berlin)


def test_render_refuses_a_template_that_bypassed_the_save_check():
    with pytest.raises(TemplateProblem):
        render_message("x", "{% debug %}", {})
    with pytest.raises(TemplateProblem):
        check_template("{{ deployment.__class__ }}")


VECTORS = [
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    "<script>alert(1)</script>",
    '<a href="javascript:alert(1)">click</a>',
    "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
]


@pytest.mark.parametrize("vector", VECTORS)
def test_markup_the_author_typed_into_a_body_is_text_in_every_form(crew, vector):
    """The lead writes the template; the product owner previews it. Nothing the lead typed runs there."""
    deployment, people = crew
    channel = email_channel(deployment, people["lead"], "users@example.com")
    body = f"Dear users,\n{vector}\nThanks."
    template = simple_template(deployment, people["lead"], [channel], body=body)
    rendered = services.preview(template, people["po"])

    assert "<" not in rendered.html.replace("<p>", "").replace("</p>", "").replace("<br>", "")
    assert vector.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in rendered.html.replace("&quot;", '"').replace(
        "&#x27;", "'"
    )
    assert vector in rendered.text  # the plain-text part shows what was typed
    assert "<" not in rendered.slack and vector.replace("<", "&lt;").replace(">", "&gt;") in rendered.slack


def test_line_breaks_survive_escaping(crew):
    deployment, people = crew
    channel = email_channel(deployment, people["lead"], "users@example.com")
    template = simple_template(deployment, people["lead"], [channel], body="One & two\nthree\n\nNew paragraph")
    rendered = services.preview(template, people["po"])
    assert rendered.html == "<p>One &amp; two<br>three</p>\n\n<p>New paragraph</p>"


def test_the_plain_text_part_is_not_marked_safe_for_pages(crew):
    """Pages that show the text (the preview's <pre>) must escape it like any other string."""
    deployment, people = crew
    channel = email_channel(deployment, people["lead"], "users@example.com")
    template = simple_template(deployment, people["lead"], [channel], subject="<b>Live</b>", body="<img src=x onerror=alert(1)>")
    rendered = services.preview(template, people["po"])
    assert conditional_escape(rendered.text) == "&lt;img src=x onerror=alert(1)&gt;"
    assert conditional_escape(rendered.subject) == "&lt;b&gt;Live&lt;/b&gt;"
