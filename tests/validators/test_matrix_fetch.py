"""The verdict rows the matrix reads: the same array from SQLite's cursor and PostgreSQL's COPY."""

import numpy as np
import pytest

from annotate.statistics import VERDICT_ERROR, VERDICT_FAIL, VERDICT_PASS
from validators import matrix
from validators.models import Validator, VerdictRecord

SOURCE = "def check(output, input, reference, meta):\n    return True\n"


@pytest.mark.django_db
def test_fetch_gives_codes_scores_and_ids_with_null_scores_as_nan(project, make_outputs):
    outputs = make_outputs(n_samples=2, systems=("alpha",))
    first = Validator.objects.create(project=project, kind="code", name="a", source=SOURCE)
    second = Validator.objects.create(project=project, kind="code", name="b", source=SOURCE)
    VerdictRecord.objects.bulk_create([
        VerdictRecord(validator=first, output=outputs[0], outcome="pass", score=0.75),
        VerdictRecord(validator=first, output=outputs[1], outcome="fail"),
        VerdictRecord(validator=second, output=outputs[0], outcome="error"),
    ])
    ids = sorted(VerdictRecord.objects.values_list("id", flat=True))

    data = matrix._fetch(np.array([first.pk, second.pk]), since=ids[0] - 1)

    data = data[np.argsort(data[:, 4])]
    assert data.dtype == np.float64 and data.shape == (3, 6)
    np.testing.assert_array_equal(data[:, [0, 1, 2, 4]], [
        [outputs[0].pk, first.pk, VERDICT_PASS, ids[0]],
        [outputs[1].pk, first.pk, VERDICT_FAIL, ids[1]],
        [outputs[0].pk, second.pk, VERDICT_ERROR, ids[2]],
    ])
    np.testing.assert_array_equal(data[:, 3], [0.75, np.nan, np.nan])
    created = np.array([row.created_at.timestamp() for row in VerdictRecord.objects.order_by("id")])
    np.testing.assert_allclose(data[:, 5], created, atol=1e-3)
    assert matrix._fetch(np.array([first.pk, second.pk]), since=ids[-1]).shape == (0, 6)
