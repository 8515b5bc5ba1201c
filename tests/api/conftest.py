"""Fixtures of the API tests: a client per role, and outputs with a criterion."""

import pytest
from rest_framework.test import APIClient

from annotate.services.criteria import criterion_create
from validators.matrix import forget


@pytest.fixture(autouse=True)
def fresh_verdict_matrix():
    # The verdict matrix is cached per project id, and ids come back after a rollback.
    forget()
    yield
    forget()


@pytest.fixture
def api_for():
    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def owner_api(api_for, owner, project):
    return api_for(owner)


@pytest.fixture
def annotator_api(api_for, annotator, project):
    return api_for(annotator)


@pytest.fixture
def reviewer_api(api_for, reviewer, project):
    return api_for(reviewer)


@pytest.fixture
def outsider_api(api_for, outsider, project):
    return api_for(outsider)


@pytest.fixture
def accuracy(project, owner):
    return criterion_create(
        project=project, key="accuracy", name="Accuracy", definition="Says only true things.",
        author=owner,
    )


def url(path: str, slug: str = "support-bot") -> str:
    """/api/projects/{slug}/{path}"""
    return f"/api/projects/{slug}/{path}"
