"""Every page and API endpoint of the demo project, as an owner and as an annotator, read with
query strings and posted to with form values an attacker or a mangled bookmark would send:
none may answer 5xx. (PostgreSQL refuses a NUL in any text parameter, so a value that reaches
a query unchecked is a 500 there: run on both databases.)"""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import NoReverseMatch, URLResolver, get_resolver, reverse

from annotate.models import Grade, Output, Project
from validators.models import Validator

FILTERS = ("system", "outcome", "validator", "view", "criterion", "q", "status", "kind", "selector",
           "role", "user", "annotator", "target", "scale", "search", "mode", "human", "labelled")
HOSTILE_QUERIES = [
    "page=-1&limit=1000000000&offset=-1", "page=99999999999999999999&q=" + "ab " * 2000,
    "labelled=maybe&human=x:y&human=:&validator=abc&validator=999999999999999999999:pass",
    "sort=;drop&threshold=nan&budget=-5&since=notadate&tab=%3Cscript%3E&format=xml&kind=%FF",
    "a=1&a=2&a=3&output=abc&meeting=abc&next=javascript:alert(1)",
    "&".join(f"{name}=%00" for name in FILTERS),
    "&".join(f"{name}=a%00b" for name in FILTERS),
    "&".join(f"{name}=%ED%A0%80" for name in FILTERS),  # not UTF-8: a lone surrogate's bytes
]
FORM_FIELDS = (
    "name", "key", "definition", "reason", "note", "verdict", "choice", "text", "code", "prompt",
    "system", "q", "action", "output", "annotator", "role", "username", "criterion", "validator",
    "assignment", "slug", "description", "guidelines", "model", "base_url", "api_key_env",
    "threshold", "overlap", "default_selector", "random_mix", "score", "kind", "target", "outcome",
    "title", "summary", "decision", "format", "shown_at", "next", "ffr_ceiling", "answer_patterns",
)
HOSTILE_VALUES = ("\x00", "a\x00b", "99999999999999999999999", "-1")


def url_names(resolver=None):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from url_names(pattern)
        elif pattern.name:
            yield pattern.name


@pytest.fixture
def demo_urls(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo")
    project = Project.objects.get(slug="support-answers")
    ids = [
        Output.objects.filter(project=project).first().pk,
        Validator.objects.filter(project=project).first().pk,
        Grade.objects.filter(project=project).first().pk,
    ]
    urls = set()
    for name in set(url_names()):
        for args in ([project.slug], *([project.slug, pk] for pk in ids), []):
            try:
                urls.add(reverse(name, args=args))
                break
            except NoReverseMatch:
                continue
    urls.discard(reverse("logout"))
    # Project pages, the API, output and validator pages: the sweep must reach them all.
    assert len(urls) >= 60, sorted(urls)
    return sorted(urls)


@pytest.mark.django_db
def test_no_endpoint_answers_5xx_to_hostile_input(client, demo_urls):
    client.raise_request_exception = False  # a 500 is counted, not raised
    failures = []
    for username in ("owner", "annotator"):
        client.force_login(get_user_model().objects.get(username=username))
        for url in demo_urls:
            for query in HOSTILE_QUERIES:
                status = client.get(f"{url}?{query}").status_code
                if status >= 500:
                    failures.append((username, "GET", url, query[:50], status))
            for value in HOSTILE_VALUES:
                form = dict.fromkeys(FORM_FIELDS, value)
                for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                    status = client.post(url, form, **headers).status_code
                    if status >= 500:
                        failures.append((username, "POST", url, repr(value), status))
    assert failures == []
