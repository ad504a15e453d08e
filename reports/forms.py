from django import forms

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


class VerifyForm(forms.Form):
    report = forms.FileField(label="Report (PDF)", allow_empty_file=True)
