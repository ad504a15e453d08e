import zoneinfo
from datetime import datetime

from django import forms
from django.contrib.auth import get_user_model

from checklists.models import RunbookVersion

ZONES = sorted(zoneinfo.available_timezones())
MAX_ID = 2**63 - 1  # PostgreSQL bigint: a larger id is no row, and a DataError if it reaches a query


def parse_id(raw) -> int | None:
    """A row id typed into a form ("12"), or None for anything else ("abc", "-1", "1e9", 10**30)."""
    text = str(raw or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def aware(naive: datetime, zone_name: str) -> datetime:
    return naive.replace(tzinfo=zoneinfo.ZoneInfo(zone_name))


class ZoneField(forms.ChoiceField):
    def __init__(self, **kwargs):
        super().__init__(choices=[(z, z) for z in ZONES], **kwargs)


class DeploymentForm(forms.Form):
    runbook_version = forms.ModelChoiceField(queryset=RunbookVersion.objects.select_related("runbook"), label="Runbook")
    name = forms.CharField(max_length=200)
    service = forms.CharField(max_length=120)
    version_label = forms.CharField(max_length=120, label="Version")
    environment = forms.CharField(max_length=60, initial="production")
    planned_t0 = forms.DateTimeField(
        label="Planned T-0",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    timezone = ZoneField(initial="UTC", label="Time zone of T-0")
    window_start = forms.DateTimeField(
        required=False,
        label="Maintenance window start",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    window_end = forms.DateTimeField(
        required=False,
        label="Maintenance window end",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )

    def clean(self):
        data = super().clean()
        zone = data.get("timezone")
        if not zone:
            return data
        # The form's times are wall-clock times in the chosen zone, not the server's.
        for name in ("planned_t0", "window_start", "window_end"):
            if data.get(name):
                data[name] = aware(data[name].replace(tzinfo=None), zone)
        if data.get("window_start") and data.get("window_end") and data["window_end"] <= data["window_start"]:
            self.add_error("window_end", "The window must end after it starts.")
        return data


class ReanchorForm(forms.Form):
    t0 = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"])
    timezone = ZoneField()
    reason = forms.CharField(max_length=300)

    def clean(self):
        data = super().clean()
        if data.get("t0") and data.get("timezone"):
            data["t0"] = aware(data["t0"].replace(tzinfo=None), data["timezone"])
        return data


class ParticipantForm(forms.Form):
    username = forms.CharField(max_length=150)
    roles = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    is_lead = forms.BooleanField(required=False, label="Lead")

    def __init__(self, *args, role_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["roles"].choices = [(n, n) for n in role_names]

    def clean_username(self):
        username = self.cleaned_data["username"]
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(f"No active user called {username!r}.")
        return user


class ContactForm(forms.Form):
    role = forms.ChoiceField(required=False)
    level = forms.IntegerField(min_value=1, max_value=9, initial=1)
    name = forms.CharField(max_length=120)
    phone = forms.CharField(max_length=40, required=False)
    email = forms.EmailField(required=False)

    def __init__(self, *args, role_names=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [("", "—")] + [(n, n) for n in role_names]
