"""validator_choice: draw mass only for criteria whose choice is still open (DESIGN §4.3)."""

from __future__ import annotations

import numpy as np
import pytest

from annotate.selectors import HOLISTIC, SelectionContext, choose, clear_cache, get_selector
from annotate.selectors.evidence_based import criteria_settling

NAN = np.nan


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def two_criteria(n_labelled, *, seed=0, n=1200, label_weights=None):
    """Criterion 0: candidates 0 and 1 differ on 80 outputs only (a near tie that full data
    settles); criterion 1: candidate 3 is far better than candidate 2 (settles early)."""
    rng = np.random.default_rng(seed)
    passes = rng.random(n) < 0.6
    base = np.where(passes, rng.random(n) < 0.85, rng.random(n) < 0.4).astype(np.float32)
    evidence = np.stack([base, base, base, base], axis=1)
    evidence[np.flatnonzero(base == 1)[:80], 1] = 0
    evidence[:, 2] = np.where(passes, rng.random(n) < 0.9, rng.random(n) < 0.7)
    evidence[:, 3] = np.where(passes, rng.random(n) < 0.92, rng.random(n) < 0.1)
    labelled = rng.permutation(n)[:n_labelled]
    by_criterion = np.full((n, 2), NAN, np.float32)
    by_criterion[labelled] = passes[labelled, None]
    human = np.full(n, NAN, np.float32)
    human[labelled] = passes[labelled]
    return SelectionContext(
        candidate_mask=np.isnan(human), system_codes=np.zeros(n, np.int32),
        sample_codes=np.arange(n, dtype=np.int32), evidence=evidence, evidence_scores=None,
        validator_criteria=np.array([0, 0, 1, 1], np.int32), human=human,
        human_by_criterion=by_criterion, embeddings=None, n_labelled=n_labelled,
        validator_names=("a0", "a1", "b0", "b1"), criterion_names=("alpha", "beta"),
        label_weights=label_weights,
    )


def test_a_settled_criterion_gets_no_draw_mass_and_an_open_one_gets_its_disagreements():
    ctx = two_criteria(600)
    states = criteria_settling(ctx)
    assert sorted(states) == [0, 1]
    assert states[1][1].settled and states[1][1].leader == 1
    assert not states[0][1].settled
    assert states[0][1].pairs in (((0, 1),), ((1, 0),))

    scored = get_selector("validator_choice").score(ctx, np.random.default_rng(0))

    pool = ctx.pool
    disagree = ctx.evidence[pool, 0] != ctx.evidence[pool, 1]
    share = disagree.mean()
    # uniform share 0.3, the rest (0.7) spread evenly over alpha's disagreements only.
    np.testing.assert_allclose(scored.scores[disagree], 0.3 + 0.7 / share)
    np.testing.assert_allclose(scored.scores[~disagree], 0.3)
    row = int(pool[np.flatnonzero(disagree)[0]])
    assert scored.explain(row).startswith("1 of 2 criteria's validator choices are still open; on alpha")


def test_the_chooser_records_the_true_probability_of_a_concentrated_draw():
    ctx = two_criteria(600)
    scored = get_selector("validator_choice").score(ctx, np.random.default_rng(0))
    by_row = dict(zip(scored.indices.tolist(), scored.scores.tolist(), strict=True))

    choice = choose(get_selector("validator_choice"), ctx, epsilon=0.1,
                    rng=np.random.default_rng(3))

    pool_size = ctx.pool.shape[0]
    assert choice.pool_size == pool_size
    assert choice.probability == pytest.approx(
        0.1 / pool_size + 0.9 * by_row[choice.row] / sum(by_row.values()))


def test_every_criterion_settled_means_a_uniform_draw():
    ctx = two_criteria(1199)

    states = criteria_settling(ctx)
    scored = get_selector("validator_choice").score(ctx, np.random.default_rng(0))

    assert all(state.settled for _, state in states.values())
    assert scored.scores.tolist() == [1.0]
    assert scored.explain(int(ctx.pool[0])) == (
        "every criterion's validator choice is settled: drawn uniformly")


def test_uniform_before_any_grade():
    ctx = two_criteria(0)

    scored = get_selector("validator_choice").score(ctx, np.random.default_rng(0))

    assert np.all(scored.scores == 1.0)
    assert scored.explain(0) == "no two candidate validators to separate yet: drawn uniformly"


def test_label_weights_change_the_estimates_the_choice_rests_on():
    # The same labels, one weighted 50×: the weighted estimates are what settle (or not).
    plain = two_criteria(300)
    weights = np.ones(plain.n_outputs)
    weights[np.flatnonzero(~np.isnan(plain.human))[0]] = 50.0
    weighted = two_criteria(300, label_weights=weights)

    plain_alpha = criteria_settling(plain)[0][1]
    weighted_alpha = criteria_settling(weighted)[0][1]

    assert plain_alpha.worst_gap != pytest.approx(weighted_alpha.worst_gap)


def test_label_weights_must_cover_every_output():
    with pytest.raises(ValueError, match="label_weights"):
        two_criteria(10, label_weights=np.ones(3))


def test_holistic_criterion_is_settled_like_any_other():
    ctx = two_criteria(600)
    holistic = SelectionContext(**{
        **{f: getattr(ctx, f) for f in ctx.__dataclass_fields__},
        "validator_criteria": np.array([HOLISTIC, HOLISTIC, 1, 1], np.int32),
    })

    states = criteria_settling(holistic)

    assert sorted(states) == [HOLISTIC, 1]
    assert states[HOLISTIC][1].settled == states_alpha_settled(ctx)


def states_alpha_settled(ctx):
    return criteria_settling(ctx)[0][1].settled


def test_before_any_candidate_qualifies_the_two_leading_candidates_disagreements_are_drawn_more():
    ctx = two_criteria(4, seed=2)
    states = criteria_settling(ctx)
    assert states[0][1].leader is None and states[1][1].leader is None

    scored = get_selector("validator_choice").score(ctx, np.random.default_rng(0))

    assert scored.scores.min() == pytest.approx(0.3)
    assert scored.scores.max() > 1.0


def test_doubt_focus_draws_more_of_the_outputs_a_doubtful_leader_fails():
    # 40 labels: the leader's FFR interval reaches above 0.25 (n_pass ≈ 24).
    ctx = two_criteria(40, seed=4)
    states = criteria_settling(ctx)
    doubtful = [c for c, (_, s) in states.items() if s.leader_in_doubt and not s.settled]
    assert doubtful

    plain = get_selector("validator_choice").score(ctx, np.random.default_rng(0))
    focused = get_selector("validator_choice", doubt_focus=True).score(ctx, np.random.default_rng(0))

    columns, state = states[doubtful[0]]
    fails = ctx.evidence[ctx.pool, columns[state.leader]] == 0
    plain_share = plain.scores[fails].sum() / plain.scores.sum()
    focused_share = focused.scores[fails].sum() / focused.scores.sum()
    assert focused_share > plain_share


def test_doubt_uniform_draws_a_doubtful_leaders_criterion_uniformly():
    ctx = two_criteria(40, seed=4)
    states = criteria_settling(ctx)
    open_states = {c: s for c, (_, s) in states.items() if not s.settled}
    doubtful = [c for c, s in open_states.items() if s.leader_in_doubt]
    assert doubtful

    scored = get_selector("validator_choice", doubt_uniform=True).score(ctx, np.random.default_rng(0))

    # Each open criterion has an equal part of the 0.7; a doubtful one spreads its part evenly.
    pool = ctx.pool
    expected_focus = np.zeros(pool.shape[0])
    for criterion, state in open_states.items():
        if state.leader_in_doubt:
            expected_focus += 1.0
            continue
        columns = states[criterion][0]
        share = np.zeros(pool.shape[0])
        for held, challenger in state.pairs:
            share += ctx.evidence[pool, columns[held]] != ctx.evidence[pool, columns[challenger]]
        expected_focus += share / share.mean()
    expected = 0.3 + 0.7 * expected_focus / len(open_states)
    np.testing.assert_allclose(scored.scores, expected)


def test_doubt_uniform_leaves_a_criterion_with_a_sure_leader_on_its_disagreements():
    ctx = two_criteria(200, seed=1)
    states = [s for _, s in criteria_settling(ctx).values()]
    assert not any(s.leader_in_doubt for s in states) and not all(s.settled for s in states)

    plain = get_selector("validator_choice").score(ctx, np.random.default_rng(0))
    doubt = get_selector("validator_choice", doubt_uniform=True).score(ctx, np.random.default_rng(0))

    np.testing.assert_array_equal(plain.scores, doubt.scores)


def test_a_pilot_sample_is_uniform_until_its_size_then_the_draw_concentrates():
    before = two_criteria(39, seed=4)
    after = two_criteria(40, seed=4)
    selector = get_selector("validator_choice", pilot_labels=40)

    pilot = selector.score(before, np.random.default_rng(0))
    past = selector.score(after, np.random.default_rng(0))

    assert np.all(pilot.scores == 1.0)
    assert pilot.explain(int(before.pool[0])).startswith("a uniform pilot sample (39 of 40 labels)")
    assert past.scores.max() > past.scores.min()
