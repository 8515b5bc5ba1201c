from django import forms

from annotate.models import Criterion
from validators.models import Provider, ValidatorKind

CODE_EXAMPLE = (
    "import re\n\n"
    "def check(output, input, reference, meta):\n"
    "    # Return True (pass), False (fail), a number compared with the threshold, or None.\n"
    "    return not re.search(r\"[\\w.]+@[\\w.]+\", output)\n"
)
PROMPT_EXAMPLE = (
    "Question: {input}\nAnswer: {output}\nReference: {reference}\n\n"
    "Is every claim in the answer supported by the reference? Answer YES or NO."
)


class ValidatorForm(forms.Form):
    kind = forms.ChoiceField(choices=ValidatorKind.choices, initial=ValidatorKind.CODE)
    name = forms.CharField(max_length=200)
    criterion = forms.ModelChoiceField(
        queryset=Criterion.objects.none(), required=False, empty_label="Holistic verdict"
    )
    source = forms.CharField(widget=forms.Textarea(attrs={"rows": 10, "class": "code", "spellcheck": "false"}), initial=CODE_EXAMPLE)
    threshold = forms.FloatField(required=False, help_text="For numeric results: passes when ≥ threshold.")
    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), required=False)

    def __init__(self, *args, project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["criterion"].queryset = Criterion.objects.filter(project=project, archived=False)
        self.fields["provider"].queryset = Provider.objects.filter(project=project)


class ProviderForm(forms.Form):
    name = forms.SlugField(max_length=64, initial="default")
    base_url = forms.URLField(max_length=500, assume_scheme="https", help_text="OpenAI-compatible, e.g. http://127.0.0.1:8765/v1")
    model = forms.CharField(max_length=200)
    api_key_env = forms.CharField(
        max_length=100, required=False,
        help_text="The NAME of the environment variable that holds the key (never the key).",
    )
    concurrency = forms.IntegerField(min_value=1, max_value=256, initial=8)
    timeout_seconds = forms.FloatField(min_value=0.1, initial=30.0)


class ValidatorImportForm(forms.Form):
    file = forms.FileField(help_text="A validators JSON file as exported.")
    create_criteria = forms.BooleanField(
        required=False, label="Create missing criteria",
        help_text=(
            "Otherwise a criterion the project lacks is refused, so a typo never becomes one."
        ),
    )
