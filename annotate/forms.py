from django import forms
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import format_html

from annotate.models import Project, Role


class ProjectSettingsForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = [
            "name", "description", "guidelines", "default_selector", "overlap", "overlap_first",
            "default_ffr_ceiling", "min_labels_per_class", "random_mix", "goal_balance", "scale", "scale_min",
            "scale_max", "pass_threshold", "annotators_may_edit_criteria",
            "holistic_pass_implies_criteria",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "guidelines": forms.Textarea(attrs={"rows": 6}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from annotate.selectors import SELECTORS

        # Eleven bare names told a newcomer nothing: each option says what it picks.
        self.fields["default_selector"].choices = [
            (name, f"{cls.label} — {cls.summary}") for name, cls in SELECTORS.items()
        ]
        # A form posted without it (an older page, a script) keeps the stored balance.
        self.fields["goal_balance"].required = False
        self.fields["default_selector"].help_text = format_html(
            'What picks the next output to grade. <a href="{}">How the selectors compare</a>.',
            reverse("selector-guide"),
        )

    def clean_goal_balance(self):
        balance = self.cleaned_data.get("goal_balance")
        return self.instance.goal_balance if balance is None else balance


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=80, required=False, help_text="Leave empty to derive it.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="JSON Lines, CSV or Parquet.")
    with_labels = forms.BooleanField(
        required=False, help_text="Also turn each record's `human` field into grades."
    )


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    # The least powerful role that can work is the default: Owner (the first choice) was
    # selected unless changed, and a newcomer added in a hurry became an owner.
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)

    def clean_username(self):
        username = self.cleaned_data["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"No user named '{username}'.")
        return user
