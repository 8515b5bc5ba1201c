"""Token and session authentication, and the shape of refusals."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_token_is_issued_for_a_password_and_authenticates_requests(owner, project):
    client = APIClient()

    answer = client.post(
        "/api/auth/token/", {"username": "olivia", "password": "pw-for-tests"}, format="json"
    )

    assert answer.status_code == 200
    token = answer.json()["token"]
    assert token == Token.objects.get(user=owner).key
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    listed = client.get("/api/projects/")
    assert listed.status_code == 200
    assert [p["slug"] for p in listed.json()["results"]] == ["support-bot"]


@pytest.mark.django_db
def test_wrong_password_gets_no_token(owner):
    answer = APIClient().post(
        "/api/auth/token/", {"username": "olivia", "password": "nope"}, format="json"
    )

    assert answer.status_code == 400
    assert answer.json() == {"errors": [
        {"field": "", "message": "Unable to log in with provided credentials."},
    ]}
    assert Token.objects.count() == 0


@pytest.mark.django_db
def test_unknown_token_is_refused_with_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")

    answer = client.get("/api/projects/")

    assert answer.status_code == 401
    assert answer.json() == {"errors": [{"field": "", "message": "Invalid token."}]}


@pytest.mark.django_db
def test_anonymous_request_is_told_to_authenticate():
    answer = APIClient().get("/api/projects/")

    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == "Token"
    assert answer.json() == {"errors": [
        {"field": "", "message": "Authentication credentials were not provided."},
    ]}


@pytest.mark.django_db
def test_session_login_works_too(client, owner, project):
    client.force_login(owner)

    answer = client.get("/api/projects/support-bot/")

    assert answer.status_code == 200
    assert answer.json()["role"] == "owner"


@pytest.mark.django_db
def test_session_writes_need_the_csrf_token(owner, project):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)

    answer = client.patch("/api/projects/support-bot/", {"name": "Renamed"}, format="json")

    assert answer.status_code == 403
    assert answer.json()["errors"][0]["message"].startswith("CSRF Failed")
    project.refresh_from_db()
    assert project.name == "Support bot"
