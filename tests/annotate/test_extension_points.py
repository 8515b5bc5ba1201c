"""Issue 16 §6: a selector and an export format are each added in one place (plus a test)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
from django.utils.safestring import mark_safe

from annotate import export_formats
from annotate.gold import write_gold
from annotate.selectors import SELECTORS
from annotate.selectors.base import (
    _REGISTERED,
    ScoredPool,
    register_selector,
    registered_selectors,
)


def test_the_registry_keeps_the_menu_order_and_refuses_two_selectors_of_one_name():
    before = dict(_REGISTERED)
    try:
        @register_selector(menu_position=15)
        @dataclass(frozen=True)
        class NewestFirst:
            name: ClassVar[str] = "newest_first"
            label: ClassVar[str] = "Newest first"
            pairwise: ClassVar[bool] = False
            uses_embeddings: ClassVar[bool] = False

            def score(self, ctx, rng):
                return ScoredPool(ctx.pool, ctx.pool.astype(float), lambda row: "newest")

        assert list(registered_selectors())[:3] == ["random", "newest_first", "evalgen"]
        with pytest.raises(ValueError, match="two selectors are named 'random'"):
            register_selector(menu_position=999)(type("Impostor", (), {"name": "random"}))
    finally:
        _REGISTERED.clear()
        _REGISTERED.update(before)
    assert list(registered_selectors()) == list(SELECTORS)


@pytest.mark.django_db
def test_an_export_format_is_its_registry_entry_and_writer(project, make_outputs, monkeypatch):
    make_outputs(n_samples=2, systems=("alpha",))

    def write_ids(chunks, stream, options):
        ids = [int(i) for chunk in chunks for i in np.asarray(chunk.output_ids)]
        stream.write(" ".join(map(str, ids)).encode())
        return len(ids)

    monkeypatch.setitem(export_formats.EXPORT_FORMATS, "ids", export_formats.ExportFormat(
        "ids", "Output ids", mark_safe("one id per output"), "Export ids", "text/plain",
        "ids", "ids", write=write_ids,
    ))
    stream = io.BytesIO()

    count = write_gold(project, "ids", stream)

    assert count == 2
    assert len(stream.getvalue().split()) == 2
