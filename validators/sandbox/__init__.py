"""Runs untrusted code assertions in confined worker processes (DESIGN §5). No Django here:
the package is usable on its own, from the web process, a Celery task or a script.

The names below are loaded on first access so that a sandbox worker, which imports
`validators.sandbox.worker`, does not also import the parent-side pool at every start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from validators.sandbox.policy import ALLOWED_MODULES, check_source
    from validators.sandbox.pool import (
        CheckItem,
        CheckResult,
        CompareItem,
        CompareResult,
        SandboxError,
        SandboxPool,
        SandboxUnavailable,
        SandboxWorkerError,
        get_pool,
    )

_EXPORTS = {
    "ALLOWED_MODULES": "validators.sandbox.policy",
    "check_source": "validators.sandbox.policy",
    "CheckItem": "validators.sandbox.pool",
    "CheckResult": "validators.sandbox.pool",
    "CompareItem": "validators.sandbox.pool",
    "CompareResult": "validators.sandbox.pool",
    "SandboxError": "validators.sandbox.pool",
    "SandboxPool": "validators.sandbox.pool",
    "SandboxUnavailable": "validators.sandbox.pool",
    "SandboxWorkerError": "validators.sandbox.pool",
    "get_pool": "validators.sandbox.pool",
}

__all__ = [
    "ALLOWED_MODULES",
    "CheckItem",
    "CheckResult",
    "CompareItem",
    "CompareResult",
    "SandboxError",
    "SandboxPool",
    "SandboxUnavailable",
    "SandboxWorkerError",
    "check_source",
    "get_pool",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'validators.sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
