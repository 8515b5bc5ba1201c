"""Test doubles shared by the tests, the benchmarks and the demo.

Nothing here imports Django, so a benchmark or a developer's shell can start a stub without
configuring settings.
"""

from concord_testing.llm_stub import LLMStubServer, hashed_responder, keyword_responder

__all__ = ["LLMStubServer", "hashed_responder", "keyword_responder"]
