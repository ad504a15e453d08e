from django import forms

from reports.formatting import ZONE_CHOICES
from reports.models import Outcome, Paper


class SignOffForm(forms.Form):
    role = forms.ChoiceField(label="Signing as")
    outcome = forms.ChoiceField(choices=Outcome.choices, widget=forms.RadioSelect, label="Outcome")
    statement = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": 2000}),
        max_length=2000,
        label="Statement",
        help_text="What you confirm, in your own words; it is printed in the report.",
    )
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        label="Your password",
        help_text="A sign-off is a signature: confirm it is you.",
    )

    def __init__(self, *args, role_names: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(name, name) for name in role_names]
        if len(role_names) == 1:
            self.fields["role"].initial = role_names[0]


class ReportRequestForm(forms.Form):
    paper = forms.ChoiceField(choices=Paper.choices, initial=Paper.A4, label="Paper")
    zone = forms.ChoiceField(label="Times in", required=False)

    def __init__(self, *args, deployment_zone: str = "UTC", **kwargs):
        super().__init__(*args, **kwargs)
        zones = [deployment_zone, *(z for z in ZONE_CHOICES if z != deployment_zone)]
        self.fields["zone"].choices = [(z, f"{z} (the deployment's)" if z == deployment_zone else z) for z in zones]
        self.fields["zone"].initial = deployment_zone


class VerifyForm(forms.Form):
    report = forms.FileField(label="Report (PDF)", allow_empty_file=True)
