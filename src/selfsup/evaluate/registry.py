"""Evaluation protocols by name, each saying what it needs from the data.

A protocol is a function `Features -> dict[str, float]` in its own module plus one line below.
`needs` names what the evaluation data must serve (`selfsup.data.split.Split.serves`): "label"
(class labels on bank and queries), "pairs" (sentence pairs with gold scores), "retrieval"
((query, document) pairs), "captions", "factors" (generated data's known factors of variation,
on bank and queries). Adding a protocol: write its function, add a line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features, NonFiniteError, check_finite
from selfsup.evaluate.crossmodal import image_text_retrieval_protocol
from selfsup.evaluate.disentanglement import disentanglement_protocol
from selfsup.evaluate.factors import factor_knn_protocol
from selfsup.evaluate.finetune import finetune_protocol
from selfsup.evaluate.geometry import geometry_protocol
from selfsup.evaluate.knn import knn_protocol
from selfsup.evaluate.linear import linear_protocol
from selfsup.evaluate.retrieval import retrieval_protocol
from selfsup.evaluate.sts import sts_protocol
from selfsup.evaluate.svm import svm_protocol
from selfsup.evaluate.transitions import transition_ranking_protocol
from selfsup.evaluate.word_vectors import (
    analogy_file,
    analogy_protocol,
    word_similarity_files,
    word_similarity_protocol,
)
from selfsup.evaluate.zeroshot import zeroshot_protocol


@dataclass(frozen=True)
class Protocol:
    """A named evaluation: what it needs, one line of help, and the function that runs it."""

    name: str
    needs: frozenset[str]
    summary: str
    run: Callable[[Features], dict[str, float]]
    uses_encoder: bool = False  # trains the encoder: needs Features.model, not run on baselines
    # raises a SelfsupError before training when the protocol cannot run (files it reads absent)
    preflight: Callable[[], None] | None = None


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            "knn",
            frozenset({"label"}),
            f"weighted kNN top-1 (k={Features.knn_k}, T={Features.knn_t})",
            knn_protocol,
        ),
        Protocol(
            "linear", frozenset({"label"}), "logistic-regression probe top-1", linear_protocol
        ),
        Protocol(
            "svm",
            frozenset({"label"}),
            "RBF-SVM top-1, C by 5-fold cross-validation on the bank (TS2Vec's protocol)",
            svm_protocol,
        ),
        Protocol(
            "geometry",
            frozenset(),
            "alignment, uniformity, feature std and effective rank",
            geometry_protocol,
        ),
        Protocol(
            "sts",
            frozenset({"pairs"}),
            "Spearman / Pearson of cosine vs gold similarity, all and per genre",
            sts_protocol,
        ),
        Protocol(
            "finetune",
            frozenset({"label"}),
            "encoder + linear head fine-tuned on eval.finetune_fraction of the labels, "
            "beside the same architecture from scratch",
            finetune_protocol,
            uses_encoder=True,
        ),
        Protocol(
            "retrieval",
            frozenset({"retrieval"}),
            "hit@1/5/10 (success@k), BEIR recall@k and MRR@10 of (query, document) pairs over all "
            "documents",
            retrieval_protocol,
        ),
        Protocol(
            "zeroshot",
            frozenset({"label", "captions"}),
            "zero-shot top-1 from class-name prompts (image-text pairs)",
            zeroshot_protocol,
        ),
        Protocol(
            "image_text_retrieval",
            frozenset({"captions"}),
            "image-to-text and text-to-image R@1/5/10 (ties count against the query)",
            image_text_retrieval_protocol,
        ),
        Protocol(
            "factor_knn",
            frozenset({"factors"}),
            "per known factor, kNN top-1 with the factor's levels as classes, beside chance",
            factor_knn_protocol,
        ),
        Protocol(
            "disentanglement",
            frozenset({"factors"}),
            "MIG and DCI disentanglement / completeness against known factors "
            "(disentanglement_lib's definitions)",
            disentanglement_protocol,
        ),
        Protocol(
            "transition_ranking",
            frozenset({"transitions"}),
            "C-SWM's multi-step prediction: Hits@1 and MRR of each held-out episode's target "
            "state among all episodes' k-step rollouts (k = 1, 5, 10; ties against)",
            transition_ranking_protocol,
        ),
        Protocol(
            "word_similarity",
            frozenset(),
            "word vectors: WordSim-353 and SimLex-999 Spearman of cosine vs human scores, "
            "beside random vectors (gensim's test data)",
            word_similarity_protocol,
            uses_encoder=True,
            preflight=word_similarity_files,
        ),
        Protocol(
            "analogy",
            frozenset(),
            "word vectors: questions-words.txt 3CosAdd top-1 per section over the answerable "
            "questions (restrict_vocab 300000), beside random vectors",
            analogy_protocol,
            uses_encoder=True,
            preflight=analogy_file,
        ),
    )
}


def parse_protocols(protocols: str | Sequence[str]) -> tuple[str, ...]:
    """Known protocol names, de-duplicated in order; accepts "knn,linear" or a sequence."""
    if isinstance(protocols, str):
        protocols = protocols.split(",")
    names = tuple(dict.fromkeys(p.strip() for p in protocols if p.strip()))
    unknown = [p for p in names if p not in PROTOCOLS]
    if unknown:
        raise SelfsupError(
            f"unknown evaluation protocol(s) {', '.join(unknown)}; choose from: "
            f"{', '.join(PROTOCOLS)}"
        )
    return names


def check_needs(
    names: Sequence[str],
    available: set[str],
    where: str,
    withheld: dict[str, str] | None = None,
) -> None:
    """Raise if a requested protocol needs something the evaluation data does not have, or has
    but may not use (`withheld`: need -> why, e.g. labels on queries that are the bank)."""
    for name in names:
        missing = PROTOCOLS[name].needs - available
        reasons = [withheld[m] for m in sorted(missing) if withheld and m in withheld]
        if reasons:
            raise SelfsupError(f"protocol {name!r} cannot run on {where}: " + "; ".join(reasons))
        if missing:
            usable = [p for p in PROTOCOLS if PROTOCOLS[p].needs <= available]
            raise SelfsupError(
                f"protocol {name!r} needs {' and '.join(sorted(missing))}, and the evaluation "
                f"data ({where}) has none; protocols that work on it: {', '.join(usable) or 'none'}"
                + ("; or name labelled/paired data with --set eval.data=SOURCE" if usable else "")
            )


def usable(names: Sequence[str], available: set[str]) -> tuple[str, ...]:
    """The protocols of `names` whose needs `available` meets."""
    return tuple(n for n in names if PROTOCOLS[n].needs <= available)


def run_protocols(
    features: Features, names: Sequence[str], who: str = "the encoder"
) -> dict[str, float]:
    """Every named protocol on the features, as one flat dict of figures.

    Features that are not finite are refused first, with one error naming `who` made them
    (the run and the step, or the baseline): NaN would otherwise rank as a perfect match.
    """
    if names:
        check_finite(features, who)
    results: dict[str, float] = {}
    for name in names:
        try:
            results.update(PROTOCOLS[name].run(features))
        except NonFiniteError as err:  # found inside a protocol (a fine-tuning that diverged)
            raise SelfsupError(f"{who}: {err}") from None
    return results
