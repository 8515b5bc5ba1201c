"""Test doubles shared by the tests, the benchmarks and the demo.

Nothing here imports Django, so a benchmark or a developer's shell can start a stub without
configuring settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concord_testing.llm_stub import LLMStubServer, hashed_responder, keyword_responder

__all__ = ["LLMStubServer", "hashed_responder", "keyword_responder"]


def __getattr__(name: str) -> Any:
    # Imported lazily: an eager import here makes `python -m concord_testing.llm_stub` load the
    # module twice (runpy warns about exactly that).
    if name in __all__:
        from concord_testing import llm_stub

        return getattr(llm_stub, name)
    raise AttributeError(f"module 'concord_testing' has no attribute {name!r}")
