"""Which environment variables a provider may read its key from, which addresses it may call,
and keeping the key out of every text a person or a log sees (issue 11 §5). Pure: callers hand
in the policy (from Django settings) so the rules are tested alone."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Cloud instance-metadata endpoints: link-local ones (AWS, GCP, Azure, OpenStack) are caught
# by the link-local rule; these are the others, and the names that resolve to them.
METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200"),
})
METADATA_HOSTNAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "instance-data",
    "instance-data.ec2.internal",
})
REDACTED = "[redacted key]"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class KeyPolicy:
    names: tuple[str, ...]
    prefix: str

    def describe(self) -> str:
        allowed = [f"{self.prefix}…" if self.prefix else "", *self.names]
        allowed = [entry for entry in allowed if entry]
        return ", ".join(allowed) if allowed else "none (no provider may use a key)"


def api_key_env_problem(name: str, policy: KeyPolicy) -> str:
    """Why a provider may not read its key from `name`, or '' when it may. The server's own
    environment holds its secrets (SECRET_KEY, DATABASE_URL); only names an admin allowed,
    by list or prefix, are ever read."""
    if not name:
        return ""
    if not _NAME.match(name):
        return "Give the NAME of the environment variable that holds the key, not the key."
    if name in policy.names or (policy.prefix and name.startswith(policy.prefix)):
        return ""
    return (f"The server reads provider keys only from environment variables an admin allowed: "
            f"{policy.describe()}. '{name}' is not one of them.")


def base_url_problem(base_url: str, *, allow_link_local: bool, resolve: bool = True) -> str:
    """Why a provider may not call `base_url`, or ''. Link-local and metadata addresses hand
    out cloud credentials to whoever asks from inside the machine."""
    if not base_url.startswith(("http://", "https://")):
        return "The base URL must start with http:// or https://."
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:
        return "The base URL is not a valid URL."
    if not host:
        return "The base URL has no host."
    if allow_link_local:
        return ""
    refused = (f"The base URL points at a link-local or cloud-metadata address ({host}); "
               f"an admin can allow that with CONCORD_LLM_ALLOW_LINK_LOCAL=1.")
    if host.rstrip(".").lower() in METADATA_HOSTNAMES:
        return refused
    for address in _addresses(host, resolve=resolve):
        if address.is_link_local or address in METADATA_ADDRESSES or (
            isinstance(address, ipaddress.IPv6Address)
            and address.ipv4_mapped is not None
            and (address.ipv4_mapped.is_link_local or address.ipv4_mapped in METADATA_ADDRESSES)
        ):
            return refused
    return ""


def _addresses(host: str, *, resolve: bool) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if not resolve:
        return []
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []  # unresolvable now: the request will fail with its own clear error
    found = []
    for info in infos:
        try:
            found.append(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
        except ValueError:
            continue
    return found


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret replaced: a provider can echo the Authorization header back
    in an error body or an answer, and that text is stored, shown and exported."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text
