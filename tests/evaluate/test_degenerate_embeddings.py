"""Every registered protocol on degenerate embeddings: never a perfect score, one clear error.

An encoder that outputs one vector for everything (all equal), zeros, random noise, or NaN
knows nothing about the data, so no protocol may score it above chance. The test runs EVERY
protocol of the registry (a protocol added later is covered without touching this file, as long
as the data it needs and the chance level of its figures are declared below: the test fails
and says so otherwise) on every data shape it serves, with labels, gold scores, relevance and
captions drawn independently of the embeddings.

Rules (stated once, checked for every figure):
- noise: each score lies within MARGIN of its chance level;
- all equal / all zero: each score is at most chance + MARGIN, and below its perfect value
  (ties count against the query, so a constant encoder scores at or below chance);
- containing NaN: one SelfsupError that says the features are not finite and names who made
  them, before anything is scored;
- geometry of a constant (or all-zero) encoder: honest means it reads as collapsed: uniformity
  0 (its worst value), backbone std 0, effective rank 1, and no alignment figure (two views of
  one point are trivially aligned: the figure would be perfect and say nothing).
MARGIN is 4 standard deviations of a binomial proportion at chance over the scored queries
(at least 0.05), or 4 / sqrt(pairs) for a correlation (whose chance level is 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

from selfsup.data.split import FactorLabels
from selfsup.data.text import SentencePairs
from selfsup.errors import SelfsupError
from selfsup.evaluate.context import EncoderInputs, Features
from selfsup.evaluate.registry import PROTOCOLS, run_protocols
from selfsup.models import ImageEncoderSpec

CLASSES = 8
PER_CLASS = 30
N = CLASSES * PER_CLASS  # queries, and as many bank samples
DIM = 16
KINDS = ("equal", "zero", "noise", "nan")
WHO = "the degenerate test encoder"


def degenerate(kind: str, rows: int, gen: torch.Generator) -> torch.Tensor:
    """(rows, DIM) embeddings of one degenerate kind."""
    if kind == "equal":
        return torch.full((rows, DIM), 0.3)
    if kind == "zero":
        return torch.zeros(rows, DIM)
    x = torch.randn(rows, DIM, generator=gen)
    if kind == "nan":
        x[torch.randint(0, rows, (3,), generator=gen), 0] = float("nan")
    return x


class DegenerateEncoder(nn.Module):
    """An encoder whose output ignores its input (stays so under fine-tuning), for `finetune`;
    its spec builds a real convnet for the from-scratch arm (which sees labels drawn
    independently of the random images, so it must stay at chance too)."""

    kind = "image"

    def __init__(self, degenerate_kind: str):
        super().__init__()
        self.degenerate_kind = degenerate_kind
        self.spec = ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.25,))
        self.out_dim = DIM
        self.level = nn.Parameter(torch.full((DIM,), 0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = len(x)
        if self.degenerate_kind == "equal":
            return self.level.expand(rows, DIM)
        if self.degenerate_kind == "zero":
            return self.level.expand(rows, DIM) * 0
        noise = torch.randn(rows, DIM) + 0 * self.level
        if self.degenerate_kind == "nan":
            noise = noise * float("nan")
        return noise


@dataclass
class Shape:
    """One data shape a protocol serves, and what chance is on it."""

    name: str
    features: Features
    chance: dict[str, float]  # figure key -> chance level
    scored: dict[str, int]  # figure key -> how many queries the figure averages over


def hit_chance(candidates: int, relevant: int, k: int) -> float:
    """P(at least one of `relevant` among the top k of `candidates` in random order)."""
    if k >= candidates:
        return 1.0
    return 1.0 - math.comb(candidates - relevant, k) / math.comb(candidates, k)


def mrr_chance(candidates: int, relevant: int, cut: int) -> float:
    """E[1 / rank of the first relevant one, 0 beyond `cut`] in random order."""
    total = math.comb(candidates, relevant)
    last = min(cut, candidates - relevant + 1)
    return sum(math.comb(candidates - r, relevant - 1) / total / r for r in range(1, last + 1))


def build_shapes(kind: str, seed: int = 0) -> dict[str, Any]:
    """Everything any protocol can need, embeddings of `kind`, annotations independent of them.

    Returns need -> list of (shape name, fields for Features, chance, scored)."""
    gen = torch.Generator().manual_seed(seed)
    emb = degenerate(kind, N, gen)
    labels = torch.arange(N) % CLASSES  # balanced
    perm = torch.randperm(N, generator=gen)
    q_labels = labels[perm]
    base: dict[str, Any] = {"queries": emb}
    shapes: dict[str, list[tuple[str, dict[str, Any], dict[str, float], dict[str, int]]]] = {}

    top1 = {
        f"{p}_top1": 1 / CLASSES for p in ("knn", "linear", "svm", "finetune", "finetune_scratch")
    }
    shapes["label"] = [
        (
            "balanced classes",
            {
                "bank": degenerate(kind, N, gen),
                "bank_labels": labels,
                "query_labels": q_labels,
                "model": finetune_inputs(kind, gen),
            },
            top1,
            dict.fromkeys(top1, N),
        )
    ]

    first = torch.randperm(N, generator=gen)[: N // 2]
    second = torch.randperm(N, generator=gen)[: N // 2]
    scores = torch.rand(N // 2, generator=gen) * 5
    genres = ["news" if i % 2 else "forums" for i in range(N // 2)]
    sts = SentencePairs(first, second, scores, genres)
    corr = {"sts_spearman": 0.0, "sts_pearson": 0.0}
    corr |= {f"sts_spearman/{g}": 0.0 for g in set(genres)}
    shapes["pairs"] = [
        (
            "scored sentence pairs",
            {"pairs": sts},
            corr,
            {"sts_spearman": N // 2, "sts_pearson": N // 2}
            | {f"sts_spearman/{g}": N // 4 for g in set(genres)},
        )
    ]

    retrieval = []
    for per_query in (1, 3):  # one relevant document per query; several
        queries = 40
        order = torch.randperm(N, generator=gen)
        q_idx, d_idx = order[:queries], order[queries:]
        rows_q, rows_d = [], []
        for i in range(queries):
            picked = torch.randperm(N - queries, generator=gen)[:per_query]
            rows_q += [int(q_idx[i])] * per_query
            rows_d += d_idx[picked].tolist()
        pairs = SentencePairs(torch.tensor(rows_q), torch.tensor(rows_d), torch.ones(len(rows_q)))
        docs = len(set(rows_d))  # the protocol ranks every distinct document of the rows
        chance = {f"retrieval_hit@{k}": hit_chance(docs, per_query, k) for k in (1, 5, 10)}
        chance["retrieval_mrr@10"] = mrr_chance(docs, per_query, 10)
        if per_query > 1:
            chance |= {f"retrieval_recall@{k}": k / docs for k in (1, 5, 10)}
            chance |= {
                f"retrieval_recall_cap@{k}": k / docs * per_query / min(k, per_query)
                for k in (1, 5, 10)
            }
        retrieval.append(
            (
                f"{per_query} relevant document(s) per query",
                {"retrieval": pairs},
                chance,
                dict.fromkeys(chance, queries),
            )
        )
    shapes["retrieval"] = retrieval

    captions = []
    for repeated in (False, True):
        text = (
            [f"a photo of a class-{int(y)} thing" for y in q_labels]
            if repeated
            else [f"caption number {i}" for i in range(N)]
        )
        group = PER_CLASS if repeated else 1
        chance = {f"{d}_r@{k}": hit_chance(N, group, k) for d in ("i2t", "t2i") for k in (1, 5, 10)}
        captions.append(
            (
                "captions repeating (template demo)" if repeated else "distinct captions",
                {
                    "query_labels": q_labels,
                    "extra": {
                        "caption_features": degenerate(kind, N, gen),
                        "captions": text,
                        "class_features": degenerate(kind, CLASSES, gen),
                    },
                },
                chance | {"zeroshot_top1": 1 / CLASSES, "zeroshot_top5": 5 / CLASSES},
                dict.fromkeys([*chance, "zeroshot_top1", "zeroshot_top5"], N),
            )
        )
    shapes["captions"] = captions

    # known factors of generated data: balanced, drawn independently of the embeddings
    levels = (2, 4, 3)
    bank_f = torch.stack([torch.arange(N) % n for n in levels], 1)
    query_f = torch.stack(
        [torch.arange(N)[torch.randperm(N, generator=gen)] % n for n in levels], 1
    )
    names = ("a", "b", "c")
    chance = {"mig": 0.0, "dci_disentanglement": 0.0, "dci_completeness": 0.0}
    chance["dci_informativeness"] = sum(1 / n for n in levels) / len(levels)
    for k, (name, count) in enumerate(zip(names, levels, strict=True)):
        chance[f"factor_knn/{name}_top1"] = 1 / count
        # the chance figure itself: the queries' most frequent level
        chance[f"factor_chance/{name}_top1"] = query_f[:, k].bincount().max().item() / N
    shapes["factors"] = [
        (
            "known factors",
            {
                "bank": degenerate(kind, N, gen),
                "bank_factors": FactorLabels(bank_f, names),
                "query_factors": FactorLabels(query_f, names),
            },
            chance,
            dict.fromkeys(chance, N),
        )
    ]
    # held-out episodes' k-step rollouts and their targets (C-SWM's transition_ranking): each
    # target ranks its own episode's rollout among all N, so chance is a uniform rank in 1..N
    episodes: dict[str, Any] = {}
    chance = {}
    for k in (1, 5, 10):
        episodes[f"rollout_{k}"] = degenerate(kind, N, gen)
        episodes[f"target_{k}"] = degenerate(kind, N, gen)
        chance[f"transition_step{k}_hit@1"] = hit_chance(N, 1, 1)
        chance[f"transition_step{k}_mrr"] = mrr_chance(N, 1, N)
    shapes["transitions"] = [
        (
            "episodes rolled out 1, 5, 10 steps",
            {"extra": episodes},
            chance,
            dict.fromkeys(chance, N),
        )
    ]
    views = (degenerate(kind, N, gen), degenerate(kind, N, gen))
    if kind == "equal" or kind == "zero":
        views = (emb.clone(), emb.clone())
    # a word-vector table of the degenerate kind (word_similarity, analogy read the table)
    return {"base": base | {"views": views, "model": word_table(kind, gen)}, "shapes": shapes}


def word_table(kind: str, gen: torch.Generator) -> EncoderInputs:
    """A word-vector table over every word of the benchmark files, its rows degenerate."""
    from selfsup.data.words import Vocabulary
    from selfsup.evaluate import word_vectors as wv
    from selfsup.models.word_vectors import WordVectors, WordVectorsSpec

    found: dict[str, None] = {}
    for name in (wv.WORDSIM, wv.SIMLEX):
        for a, b, _ in wv.read_word_pairs(wv.benchmark_file(name)):
            found.update(dict.fromkeys((a, b)))
    for _, questions in wv.read_analogies(wv.benchmark_file(wv.ANALOGIES)):
        for question in questions:
            found.update(dict.fromkeys(question))
    vocabulary = Vocabulary(tuple(found), (1,) * len(found))
    table = WordVectors(WordVectorsSpec(dim=DIM, vocabulary=vocabulary))
    with torch.no_grad():
        table.vectors.weight.copy_(degenerate(kind, len(found), gen))
    return EncoderInputs(
        encoder=table, bank={}, queries={}, to_input=lambda batch: batch, epochs=1, batch_size=1
    )


def finetune_inputs(kind: str, gen: torch.Generator) -> EncoderInputs:
    images = torch.randint(0, 256, (2 * N, 1, 8, 8), dtype=torch.uint8, generator=gen)
    return EncoderInputs(
        encoder=DegenerateEncoder(kind),
        bank={"image": images[:N]},
        queries={"image": images[N:]},
        to_input=lambda batch: batch["image"],
        epochs=2,
        batch_size=64,
    )


# Figures that are settings or counts, not scores of the encoder.
NOT_SCORES = {"linear_weight_decay", "svm_c", "svm_fit_rows", "finetune_labels"}
# word-vector protocols: counts of the benchmark rows the table knows, and their random row
NOT_SCORES |= {f"{b}_pairs_known" for b in ("wordsim353", "simlex999")}
NOT_SCORES |= {"analogy_answerable", "analogy_questions", "analogy_random_vectors_accuracy"}
NOT_SCORES |= {f"{b}_spearman_random_vectors" for b in ("wordsim353", "simlex999")}
WORD_CHANCE = {"wordsim353_spearman": (0.0, 353), "simlex999_spearman": (0.0, 999)}
GEOMETRY = {
    "uniformity",
    "backbone_std",
    "backbone_effective_rank",
    "alignment",
    "sts_uniformity",
    "sts_alignment",
}


def margin(key: str, chance: float, scored: int) -> float:
    if key.startswith("sts_") or key.endswith("_spearman"):
        return 4 / math.sqrt(scored)
    return max(0.05, 4 * math.sqrt(max(chance * (1 - chance), 1e-4) / scored))


def combinations(need_order: frozenset[str], shapes: dict[str, list]) -> list:
    """Every combination of one shape per need of a protocol (a protocol may need several)."""
    combos: list[list] = [[]]
    for need in sorted(need_order):
        combos = [[*c, s] for c in combos for s in shapes[need]]
    return combos


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_protocol_scores_degenerate_embeddings_at_chance_or_refuses(name, kind):
    protocol = PROTOCOLS[name]
    built = build_shapes(kind)
    shapes = built["shapes"]
    unknown = protocol.needs - set(shapes)
    assert not unknown, f"declare test data for need(s) {unknown} of protocol {name!r} here"
    for combo in combinations(protocol.needs, shapes):
        fields = dict(built["base"])
        chance: dict[str, float] = {}
        scored: dict[str, int] = {}
        extra: dict[str, Any] = {}
        for _, part, part_chance, part_scored in combo:
            for key, value in part.items():
                if key == "extra":
                    extra |= value
                else:
                    fields[key] = value
            chance |= part_chance
            scored |= part_scored
        features = Features(**fields, extra=extra, knn_k=50)
        where = f"{name} on {kind} embeddings; " + (", ".join(s[0] for s in combo) or "no data")
        if kind == "nan":
            with pytest.raises(SelfsupError, match=r"(?i)nan|not finite") as err:
                run_protocols(features, (name,), who=WHO)
            assert WHO in str(err.value), where
            continue
        results = run_protocols(features, (name,), who=WHO)
        assert results, where
        for key in results:  # word vectors: a Spearman, or an analogy accuracy
            if key in WORD_CHANCE:
                chance[key], scored[key] = WORD_CHANCE[key]
            elif key.startswith("analogy_") and key.endswith("_accuracy"):
                chance[key], scored[key] = 0.0, 500
        for key, value in results.items():
            if key in NOT_SCORES:
                continue
            if key in GEOMETRY:
                check_geometry(key, value, kind, where)
                continue
            assert key in chance, f"declare the chance level of {key!r} ({where}) in this test"
            level, allowed = chance[key], margin(key, chance[key], scored[key])
            assert math.isfinite(value), f"{key} = {value} ({where})"
            if kind == "noise":
                assert abs(value - level) <= allowed, f"{key} = {value}, chance {level} ({where})"
            else:
                assert value <= level + allowed, f"{key} = {value}, chance {level} ({where})"
                assert value < 1.0, f"{key} = {value}: a perfect score ({where})"
        if kind in ("equal", "zero") and "geometry" in name:
            assert "alignment" not in results, where


def check_geometry(key: str, value: float, kind: str, where: str) -> None:
    assert math.isfinite(value), f"{key} = {value} ({where})"
    if kind == "noise":
        return
    collapsed = {
        "uniformity": (0.0, 1e-5),
        "sts_uniformity": (0.0, 1e-5),
        "backbone_std": (0.0, 1e-6),
        "backbone_effective_rank": (1.0, 1e-3),
    }
    assert key in collapsed, f"{key} = {value}: a collapsed encoder reports no {key} ({where})"
    want, tol = collapsed[key]
    assert abs(value - want) <= tol, f"{key} = {value}, collapsed means {want} ({where})"


def test_the_nan_error_names_who_made_the_features():
    features = Features(torch.full((4, 3), float("nan")))
    with pytest.raises(SelfsupError) as err:
        run_protocols(features, ("geometry",), who="the learned encoder of runs/x at step 40")
    message = str(err.value)
    assert "runs/x" in message and "step 40" in message and "not finite" in message


def test_chance_formulas_by_hand():
    assert hit_chance(10, 1, 1) == pytest.approx(0.1)
    assert hit_chance(10, 1, 5) == pytest.approx(0.5)
    assert hit_chance(4, 2, 1) == pytest.approx(0.5)
    assert mrr_chance(3, 1, 10) == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
