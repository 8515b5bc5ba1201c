from __future__ import annotations

from django import forms

from annotate.models import Criterion
from validators.models import Provider, Target, ValidatorKind

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


PAIRWISE_PROMPT_EXAMPLE = (
    "Question: {input}\n\nOutput (a):\n{output_a}\n\nOutput (b):\n{output_b}\n\n"
    "Which output answers the question better? Answer with \"Output (a)\" or \"Output (b)\"."
)
COMPARATOR_EXAMPLE = (
    "def compare(output_a, output_b, input, reference, meta):\n"
    "    # Return 'a', 'b', 'tie', or a number (a - b: above 0 means a is better).\n"
    "    return len(output_a) - len(output_b)\n"
)
RATING_EXAMPLE = (
    "Question: {input}\nAnswer: {output}\n\n"
    "Rate the answer from 1 to 10. End with \"Rating: <number>\"."
)


class ValidatorForm(forms.Form):
    # External validators are created by importing their verdicts, never written here.
    kind = forms.ChoiceField(
        choices=[c for c in ValidatorKind.choices if c[0] != ValidatorKind.EXTERNAL],
        initial=ValidatorKind.CODE,
    )
    # Not required: a client that predates pairwise judges posts neither of these fields.
    target = forms.ChoiceField(
        choices=Target.choices, initial=Target.OUTPUT, required=False,
        help_text="A pair: the judge says which of two outputs of the same input is better.",
    )
    name = forms.CharField(max_length=200)
    criterion = forms.ModelChoiceField(
        queryset=Criterion.objects.none(), required=False, empty_label="Holistic verdict"
    )
    source = forms.CharField(widget=forms.Textarea(attrs={"rows": 10, "class": "code", "spellcheck": "false"}), initial=CODE_EXAMPLE)
    threshold = forms.FloatField(required=False, help_text="For numeric results: passes when ≥ threshold.")
    provider = forms.ModelChoiceField(queryset=Provider.objects.none(), required=False)
    answer_patterns = forms.CharField(
        required=False, strip=False, label="Answer patterns",
        widget=forms.Textarea(attrs={"rows": 2, "class": "code", "spellcheck": "false"}),
        help_text="Optional regular expressions, one per line, each with one group capturing "
                  "the winner (a, b, c or tie) or the rating; tried before the defaults.",
    )
    inconsistent = forms.ChoiceField(
        choices=[("tie", "count it as a tie"), ("error", "count it as an error")], initial="tie",
        required=False,
        label="When the two orders disagree",
        help_text="A pairwise judge is asked with each output shown first.",
    )

    def clean_target(self) -> str:
        return self.cleaned_data["target"] or Target.OUTPUT

    def clean_inconsistent(self) -> str:
        return self.cleaned_data["inconsistent"] or "tie"

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

    @classmethod
    def for_provider(cls, project, name: str | None = None) -> ProviderForm:
        """The form filled with a saved provider (the one named, else 'default', else the
        latest), so saving shows what was saved and editing starts from it. The key is shown
        by its variable's name only: no key is ever stored."""
        providers = Provider.objects.filter(project=project)
        provider = (providers.filter(name=name).first() if name else None) or (
            providers.filter(name="default").first() or providers.order_by("-created_at").first()
        )
        if provider is None:
            return cls()
        return cls(initial={field: getattr(provider, field) for field in cls.base_fields})


class ValidatorImportForm(forms.Form):
    file = forms.FileField(help_text="A validators JSON file as exported.")
    create_criteria = forms.BooleanField(
        required=False, label="Create missing criteria",
        help_text=(
            "Otherwise a criterion the project lacks is refused, so a typo never becomes one."
        ),
    )
