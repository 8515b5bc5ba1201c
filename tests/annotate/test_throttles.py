"""Password guessing is slowed down on the token endpoint and the login form (annotate.throttles):
10 attempts a minute per client address and per username, counted in Django's cache."""

import os
import re
import subprocess
import sys

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

ATTACKER = "198.51.100.7"
COLLEAGUE = "203.0.113.20"
WRONG = {"field": "", "message": "Unable to log in with provided credentials."}


def waits(answers, message: str) -> set[int]:
    """The seconds each refusal asks for, checked to agree between the body and Retry-After.
    DRF counts from the oldest attempt in the window, so a slow machine may see 59, not 60."""
    found = set()
    for answer in answers:
        seconds = int(re.search(message, answer.content.decode())[1])
        assert answer["Retry-After"] == str(seconds)
        found.add(seconds)
    return found


API_REFUSAL = r'"Request was throttled\. Expected available in (\d+) seconds?\."'
FORM_REFUSAL = r"Too many login attempts\. Try again in (\d+) seconds?\."


def ask_token(client, username, password, address, **headers):
    return client.post(
        "/api/auth/token/", {"username": username, "password": password}, format="json",
        REMOTE_ADDR=address, **headers,
    )


def log_in(client, username, password, address, **headers):
    return client.post(
        "/login/", {"username": username, "password": password}, REMOTE_ADDR=address, **headers
    )


@pytest.mark.django_db
class TestTokenEndpoint:
    def test_sixty_wrong_passwords_meet_429_after_ten(self, owner, annotator):
        client = APIClient()

        answers = [ask_token(client, "olivia", f"guess-{i}", ATTACKER) for i in range(60)]

        assert [a.status_code for a in answers] == [400] * 10 + [429] * 50
        assert all(a.json() == {"errors": [WRONG]} for a in answers[:10])
        assert all(a.json()["errors"][0]["field"] == "" for a in answers[10:])
        assert waits(answers[10:], API_REFUSAL) <= set(range(50, 61))
        # Even the right password is not checked from that address within the window.
        assert ask_token(client, "olivia", "pw-for-tests", ATTACKER).status_code == 429
        assert Token.objects.count() == 0

        # A colleague on another machine logs in as usual.
        colleague = ask_token(APIClient(), "arjun", "pw-for-tests", COLLEAGUE)
        assert colleague.status_code == 200
        assert colleague.json() == {"token": Token.objects.get(user=annotator).key}

    def test_the_attacked_account_waits_out_the_window_from_any_address(self, owner):
        # Ten guesses from ten addresses use up the account's ten attempts.
        guesses = [ask_token(APIClient(), "Olivia ", "nope", f"192.0.2.{i}") for i in range(10)]
        assert [a.status_code for a in guesses] == [400] * 10

        again = ask_token(APIClient(), "olivia", "pw-for-tests", COLLEAGUE)

        assert again.status_code == 429
        assert waits([again], API_REFUSAL) <= set(range(50, 61))
        assert Token.objects.count() == 0

    def test_a_forged_forwarded_for_header_is_not_a_new_address(self, owner, annotator):
        client = APIClient()
        for i in range(10):
            ask_token(client, f"nobody-{i}", "nope", ATTACKER)

        forged = ask_token(client, "arjun", "pw-for-tests", ATTACKER, HTTP_X_FORWARDED_FOR="10.9.8.7")

        assert forged.status_code == 429
        assert Token.objects.count() == 0

    def test_the_counts_live_in_djangos_cache(self, owner, settings):
        settings.CONCORD_LOGIN_RATE = "2/hour"
        client = APIClient()
        assert [ask_token(client, "olivia", "nope", ATTACKER).status_code for _ in range(3)] == [400, 400, 429]
        refused = ask_token(client, "olivia", "pw-for-tests", ATTACKER)
        assert waits([refused], API_REFUSAL) <= set(range(3590, 3601))

        cache.clear()

        assert ask_token(client, "olivia", "pw-for-tests", ATTACKER).status_code == 200
        assert Token.objects.filter(user=owner).count() == 1


@pytest.mark.django_db
class TestLoginForm:
    def test_sixty_wrong_passwords_meet_429_after_ten(self, owner, annotator):
        client = Client()

        answers = [log_in(client, "olivia", f"guess-{i}", ATTACKER) for i in range(60)]

        assert [a.status_code for a in answers] == [200] * 10 + [429] * 50
        assert all(b"did not match" in a.content for a in answers[:10])
        assert waits(answers[10:], FORM_REFUSAL) <= set(range(50, 61))
        right = log_in(client, "olivia", "pw-for-tests", ATTACKER)
        assert right.status_code == 429
        assert SESSION_KEY not in client.session

        colleague = Client()
        answer = log_in(colleague, "arjun", "pw-for-tests", COLLEAGUE)
        assert (answer.status_code, answer["Location"]) == (302, "/")
        assert colleague.session[SESSION_KEY] == str(annotator.pk)

    def test_the_form_and_the_api_share_one_count(self, owner):
        for i in range(5):
            log_in(Client(), "olivia", "nope", f"192.0.2.{i}")
        for i in range(5):
            ask_token(APIClient(), "olivia", "nope", f"192.0.2.{10 + i}")

        answer = log_in(Client(), "olivia", "pw-for-tests", COLLEAGUE)

        assert answer.status_code == 429
        assert b'value="olivia"' in answer.content  # the form keeps what was typed

    def test_opening_the_form_is_not_an_attempt(self, owner):
        client = Client()
        assert {client.get("/login/", REMOTE_ADDR=ATTACKER).status_code for _ in range(30)} == {200}

        answer = log_in(client, "olivia", "pw-for-tests", ATTACKER)

        assert (answer.status_code, answer["Location"]) == (302, "/")


def test_a_malformed_rate_stops_the_app_at_start_not_at_the_first_login():
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
             "CONCORD_LOGIN_RATE": "ten a minute"},
        capture_output=True, text=True, timeout=60,
    )

    assert started.returncode == 1
    assert "ImproperlyConfigured: CONCORD_LOGIN_RATE='ten a minute': use e.g. 10/min or 100/hour." in started.stderr
