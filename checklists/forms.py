"""Forms of the runbook pages: the upload, and the small posts of the template editor.

The editor's forms only check the shape of a post (fields present, numbers that
are numbers); what a value means is checked by the service function it goes to.
"""

from __future__ import annotations

import base64
import re

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from checklists.models import ItemKind, Runbook

MARKDOWN_ACCEPT = ".md,.markdown,.txt,text/markdown,text/plain"


def max_upload_label() -> str:
    return filesizeformat(settings.RUNBOOK_MAX_BYTES)


class RunbookUploadForm(forms.Form):
    file = forms.FileField(
        label="Runbook file (Markdown)",
        widget=forms.ClearableFileInput(attrs={"accept": MARKDOWN_ACCEPT}),
    )
    runbook = forms.ModelChoiceField(
        queryset=Runbook.objects.order_by("name"),
        required=False,
        label="Add it as a new version of",
        empty_label="the runbook with the same title and structure (or a new runbook)",
    )
    as_new = forms.BooleanField(required=False, label="Import as a new runbook, even if one has the same title")
    dry_run = forms.BooleanField(
        required=False, label="Review what was understood first: show what the file holds and save nothing yet"
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("as_new") and cleaned.get("runbook"):
            raise forms.ValidationError("Choose a runbook to add a version to, or “new runbook”, not both.")
        return cleaned

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = f"A Markdown (.md) runbook of at most {max_upload_label()}."

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.RUNBOOK_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {filesizeformat(upload.size)}; the limit is {max_upload_label()}. Split the runbook or trim it."
            )
        return upload


CHOICE_KEY_RE = re.compile(r"^[a-z_]{1,20}:\d{1,6}$")
MAX_CHOICES = 5000


class RunbookReviewForm(forms.Form):
    """The second post of a reviewed import: the file as it was checked, where it goes, and the kept boxes.

    The file comes back base64-encoded in a hidden field (the exact bytes, so "the same file
    again" still recognises it); the boxes' values are ``review.choice_key``s. An unticked box
    is simply absent, so ``kept`` is what was posted.
    """

    source = forms.CharField(widget=forms.HiddenInput, strip=False)
    filename = forms.CharField(widget=forms.HiddenInput, required=False, max_length=255)
    runbook = forms.ModelChoiceField(queryset=Runbook.objects.all(), required=False, widget=forms.HiddenInput)
    as_new = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean_source(self):
        text = self.cleaned_data["source"]
        if len(text) > (settings.RUNBOOK_MAX_BYTES // 3 + 1) * 4:
            raise forms.ValidationError(f"The file is larger than {max_upload_label()}.")
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            raise forms.ValidationError("The reviewed file did not come back intact: choose the file again.") from None

    def kept(self, posted: list[str]) -> set[str]:
        return {key for key in posted[:MAX_CHOICES] if CHOICE_KEY_RE.match(key)}


class TitleForm(forms.Form):
    title = forms.CharField(max_length=2000, strip=False)


class MoveForm(forms.Form):
    direction = forms.ChoiceField(choices=[("up", "Up"), ("down", "Down")])


class ItemForm(forms.Form):
    kind = forms.ChoiceField(choices=ItemKind.choices, initial=ItemKind.CHECK)
    text = forms.CharField(max_length=4000, required=False, strip=False)
    options = forms.CharField(max_length=1000, required=False)


class RoleForm(forms.Form):
    role = forms.IntegerField(required=False, min_value=1)
    new_role = forms.CharField(max_length=500, required=False)


class TimingForm(forms.Form):
    offset = forms.CharField(max_length=60, required=False)
    duration = forms.CharField(max_length=60, required=False)


class GateForm(forms.Form):
    is_gate = forms.BooleanField(required=False)


def errors_text(form: forms.Form) -> str:
    """A form's errors as one sentence for a toast: "direction: Select a valid choice."."""
    return "; ".join(
        f"{form.fields[name].label or name if name in form.fields else name}: {' '.join(messages)}"
        if name != "__all__"
        else " ".join(messages)
        for name, messages in form.errors.items()
    )
