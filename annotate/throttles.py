"""How often anyone may try a password: the API's token endpoint and the HTML login form.

Both count attempts (right or wrong) with DRF's rate throttles, which keep their history in
Django's cache: per client IP, so one machine cannot guess quickly, and per username, so many
machines cannot guess one account quickly. The price of the second is that while an account is
under attack its owner also waits, up to one window (`CONCORD_LOGIN_RATE`, 10 a minute by
default); another account, from another address, is unaffected.

The client IP is REMOTE_ADDR unless `CONCORD_NUM_PROXIES` says how many proxies in front of
the app append to X-Forwarded-For: trusting the header by default would let an attacker name a
fresh address on every request.

With several gunicorn workers the cache must be shared (`CACHE_URL`, e.g. Redis), or each
worker counts on its own.
"""

from __future__ import annotations

import hashlib
import math

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle


def submitted_username(request) -> str:
    # A DRF Request parses JSON and forms into .data; Django's own form view has only POST.
    data = request.data if hasattr(request, "data") else request.POST
    username = data.get("username") if hasattr(data, "get") else None
    return username.strip().casefold() if isinstance(username, str) else ""


class _LoginThrottle(SimpleRateThrottle):
    def get_rate(self) -> str:
        # Read per request, not frozen at import like DRF's THROTTLE_RATES.
        return settings.CONCORD_LOGIN_RATE


class LoginAttemptsPerAddress(_LoginThrottle):
    scope = "login-address"

    def get_cache_key(self, request, view) -> str | None:
        if request.method != "POST":
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAttemptsPerUsername(_LoginThrottle):
    scope = "login-username"

    def get_cache_key(self, request, view) -> str | None:
        username = submitted_username(request) if request.method == "POST" else ""
        if not username:
            return None
        # Hashed: a username may hold characters a cache key may not (memcached: spaces).
        ident = hashlib.sha256(username.encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


LOGIN_THROTTLES = (LoginAttemptsPerAddress, LoginAttemptsPerUsername)


def login_attempt_wait(request: HttpRequest, view=None) -> int | None:
    """Records this login attempt; None when it may go ahead, else the seconds to wait.
    Every throttle is asked (and records), as DRF's own check does."""
    waits = [
        throttle.wait() for throttle in (cls() for cls in LOGIN_THROTTLES)
        if not throttle.allow_request(request, view)
    ]
    if not waits:
        return None
    return max(1, math.ceil(max(w or 0 for w in waits)))
