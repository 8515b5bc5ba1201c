"""The LLM answer cache kept in the database, so every worker shares it."""

from __future__ import annotations

from collections.abc import Sequence

from validators import llm
from validators.models import CachedAnswer


class DatabaseAnswerCache:
    """llm.AnswerCache backed by the CachedAnswer table, shared by every worker."""

    def __init__(self, model: str):
        self.model = model

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[str, int | None]]:
        found = CachedAnswer.objects.filter(key__in=list(keys)).values_list("key", "raw", "tokens")
        # An answer nobody could parse is not replayed: retrying an error verdict must ask the
        # provider again, or a fixed provider would keep "answering" with the old garbage.
        return {
            key: llm.CachedAnswer(raw, tokens) for key, raw, tokens in found
            if llm.parse_answer(raw) is not None
        }

    def set_many(self, answers) -> None:
        CachedAnswer.objects.bulk_create(
            [CachedAnswer(key=k, model=self.model, raw=raw, tokens=tokens) for k, (raw, tokens) in answers.items()],
            update_conflicts=True, unique_fields=["key"], update_fields=["raw", "tokens"],
        )
