"""Active selectors: which output a person grades next (DESIGN §4.3). Pure numpy, no Django.

    selector = get_selector("variance")
    choice = choose(selector, ctx, epsilon=0.1, rng=np.random.default_rng(seed))

A selector scores the pool rows of a `SelectionContext`; `choose` / `choose_many` turn scores
into a `Choice` with its selection probability. Selectors keep no per-instance state: what they
remember between calls (statistics of the evidence matrix, incremental nearest-labelled
similarities, warm-started fits) lives in `base.derived`, keyed by the identity of the context's
arrays. Keep those arrays alive between calls for warm timings; see `base` for the contract.
"""

import importlib
import pkgutil

from annotate.selectors.base import (
    HOLISTIC,
    ScoredPool,
    SelectionContext,
    Selector,
    clear_cache,
    registered_selectors,
)
from annotate.selectors.chooser import RANDOM_TAG, Choice, choose, choose_many
from annotate.selectors.embedding_based import DiversitySelector, MadSystemsSelector
from annotate.selectors.evidence_based import (
    EvalGenSelector,
    MadValidatorsSelector,
    MetricVarSelector,
    RandomSelector,
    ValidatorChoiceSelector,
    VarianceSelector,
)
from annotate.selectors.model_based import IrtSelector, UncertaintySelector
from annotate.selectors.ranking import RankingUncertaintySelector


def _import_every_selector_module() -> None:
    # A selector registers itself where it is defined (base.register_selector); importing
    # every module of this package is what makes a new module's selectors appear.
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_every_selector_module()

# The registry, in menu order; everything else is derived from it.
SELECTORS: dict[str, type] = registered_selectors()

SELECTOR_CHOICES: list[tuple[str, str]] = [(name, cls.label) for name, cls in SELECTORS.items()]
PAIRWISE_SELECTORS = frozenset(name for name, cls in SELECTORS.items() if cls.pairwise)
EMBEDDING_SELECTORS = frozenset(name for name, cls in SELECTORS.items() if cls.uses_embeddings)


def selector_choices() -> list[tuple[str, str]]:
    """The model field's choices, as a callable: migrations record the callable, not the list,
    so a new selector needs no migration."""
    return SELECTOR_CHOICES


def get_selector(name: str, **params: object) -> Selector:
    """A selector by registry name; `params` are its dataclass fields (e.g. diversity_weight)."""
    try:
        selector_class = SELECTORS[name]
    except KeyError:
        known = ", ".join(SELECTORS)
        raise ValueError(f"unknown selector {name!r}; known: {known}") from None
    return selector_class(**params)


__all__ = [
    "EMBEDDING_SELECTORS",
    "HOLISTIC",
    "PAIRWISE_SELECTORS",
    "RANDOM_TAG",
    "SELECTORS",
    "SELECTOR_CHOICES",
    "Choice",
    "DiversitySelector",
    "EvalGenSelector",
    "IrtSelector",
    "MadSystemsSelector",
    "MadValidatorsSelector",
    "MetricVarSelector",
    "RandomSelector",
    "RankingUncertaintySelector",
    "ScoredPool",
    "SelectionContext",
    "Selector",
    "UncertaintySelector",
    "ValidatorChoiceSelector",
    "VarianceSelector",
    "choose",
    "choose_many",
    "clear_cache",
    "get_selector",
    "selector_choices",
]
