"""word2vec (Mikolov et al. 2013): skip-gram or CBOW with negative sampling, batched in torch.

Checked against word2vec.c (tmikolov/word2vec, TrainModelThread) and gensim's word2vec_inner.pyx:
the vocabulary keeps words seen `min_count` times; frequent words are dropped before windowing
with probability 1 - (sqrt(f / s) + 1) s / f (f the word's share of the corpus, s = `sample`);
each centre word takes a window of b words on each side, b uniform in 1..window; negatives come
from the unigram distribution to the power 0.75; skip-gram predicts the centre word from each
context word's input vector, CBOW from their average; the lr decays linearly to 1e-4 of its
start. The defaults are word2vec.c's (CBOW, 100 dims, window 5, 5 negatives, sample 1e-3,
min_count 5, alpha 0.05 for CBOW and 0.025 for skip-gram; its 5 iterations are `--epochs 5`).

Batched: a step takes `train.batch_size` sentences, subsamples and windows all their words at
once and draws each centre's K negatives, shared by its window's pairs (word2vec.c draws K per
pair): docs/word2vec.md measures it. Both tables are sparse embeddings stepped by plain SGD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.data.words import build_vocabulary
from selfsup.errors import SelfsupError
from selfsup.losses.word_vectors import cbow_loss, skipgram_loss
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.word_vectors import WordVectorsSpec

MODES = ("cbow", "skipgram")
ROWS_PER_LR = 256
# SGD updates per training step, each on its share of the batch's sentences (see `views`)
PARTS = 4  # the loss is a sum over pairs per 256 sentences: see `loss`


@dataclass
class Word2VecConfig:
    mode: str = "cbow"  # word2vec.c's default (-cbow 1); "skipgram"
    dim: int = 100
    window: int = 5
    negative: int = 5
    sample: float = 1e-3  # 0 keeps every word
    min_count: int = 5
    ns_exponent: float = 0.75
    max_length: int = 1000  # words kept of a sentence (word2vec.c's MAX_SENTENCE_LENGTH)
    sif: float = 0.0  # the exported table's sentence average: 0 plain, 1e-3 SIF (Arora et al.)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("dim", "window", "negative", "min_count", "max_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.sample < 0 or self.sif < 0:
            raise ValueError("sample and sif must be >= 0")


def keep_probability(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """word2vec.c's subsampling: a word of corpus share f is kept with probability
    min(1, (sqrt(f / sample) + 1) * sample / f); every word when sample is 0."""
    if sample <= 0:
        return torch.ones_like(counts, dtype=torch.float32)
    f = counts.double() / counts.sum()
    return ((torch.sqrt(f / sample) + 1) * sample / f).clamp(max=1).float()


def noise_cdf(counts: torch.Tensor, exponent: float) -> torch.Tensor:
    """The cumulative unigram^exponent distribution (word2vec.c's InitUnigramTable, exact)."""
    p = counts.double() ** exponent
    return (p.cumsum(0) / p.sum()).float()


@register
class Word2Vec(Method):
    name = "word2vec"
    family = "words"
    paper = "Mikolov et al. 2013, Distributed Representations of Words and Phrases"
    summary = "a word's vector predicts its neighbours (skip-gram), or theirs predict it (CBOW)"
    Config = Word2VecConfig
    inputs = frozenset({"input_ids", "attention_mask"})
    modalities = frozenset({"text"})
    views_note = (
        "{cfg.mode}: windows of 1..{cfg.window} words, {cfg.negative} unigram^0.75 negatives, "
        "frequent words subsampled (sample {cfg.sample:g})"
    )
    # word2vec.c: plain SGD, alpha 0.05 (CBOW; skip-gram's groups take half), linear to 1e-4
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "sgd",
        "lr": 0.05,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "warmup": 0.0,
        "final_lr_fraction": 1e-4,
        "schedule": "linear",
        "exclude_bias_and_norm": False,
    }
    optimiser_reference = "word2vec.c (alpha 0.05 CBOW / 0.025 skip-gram, linear decay)"
    exported_as = "input word vectors (word2vec.c's syn0)"
    protocols = ("word_similarity", "analogy")
    # word2vec.c steps after every pair; a sum over 256 sentences makes frequent words diverge
    # (docs/word2vec.md), so each training step makes PARTS updates, one per share of the batch
    updates = tuple(f"part{i + 1}" for i in range(PARTS))

    @classmethod
    def own_encoder_spec(cls, cfg: Word2VecConfig, train: Any) -> WordVectorsSpec:
        """The word table is made from the training corpus: its vocabulary (min_count)."""
        vocabulary = build_vocabulary(train.sentences, cfg.min_count)
        return WordVectorsSpec(
            dim=cfg.dim, max_length=cfg.max_length, sif=cfg.sif, vocabulary=vocabulary
        )

    def __init__(self, spec: WordVectorsSpec, cfg: Word2VecConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        if spec.kind != "word-vectors":
            raise SelfsupError("word2vec trains a word-vector table (kind word-vectors)")
        size = len(spec.vocabulary)
        # word2vec.c's syn1neg: the output vectors, zero at the start, not exported
        self.output = nn.Embedding(size, cfg.dim, sparse=True)
        nn.init.zeros_(self.output.weight)
        counts = torch.tensor(spec.vocabulary.counts)
        self.register_buffer("keep", keep_probability(counts, cfg.sample), persistent=False)
        self.register_buffer("cdf", noise_cdf(counts, cfg.ns_exponent), persistent=False)

    def param_groups(self) -> list[dict[str, Any]]:
        scale = 0.5 if self.cfg.mode == "skipgram" else 1.0  # word2vec.c's 0.025 vs 0.05
        return [{"params": [self.encoder.vectors.weight, self.output.weight], "lr_scale": scale}]

    def views(self, batch: Batch) -> list[Any]:
        """One view per update (PARTS of them), each of a contiguous share of the batch's
        sentences: its kept words (subsampled) as one stream of N words, each centre's window
        mask (N, 2 * window + 1) and its negatives (N, K). Windows never cross sentences; no
        padding reaches the loss."""
        ids, valid = batch["input_ids"], batch["attention_mask"].bool()
        keep = valid & (torch.rand(ids.shape, device=ids.device) < self.keep[ids])
        rows = torch.arange(len(ids), device=ids.device).unsqueeze(1).expand_as(ids)
        parts = torch.tensor_split(torch.arange(len(ids), device=ids.device), PARTS)
        return [self._stream(ids[p], keep[p], rows[p]) for p in parts]

    def _stream(self, ids: torch.Tensor, keep: torch.Tensor, rows: torch.Tensor) -> dict[str, Any]:
        words, sentence = ids[keep], rows[keep]  # a host read: the kept count
        w = self.cfg.window
        if len(words) == 0:  # a part of sentences without a kept word
            empty = torch.zeros(0, 2 * w + 1, dtype=torch.bool, device=ids.device)
            return {"words": words, "mask": empty, "noise": words.new_zeros(0, self.cfg.negative)}
        reach = torch.randint(1, w + 1, words.shape, device=ids.device)  # word2vec.c's window-b
        offsets = torch.arange(-w, w + 1, device=ids.device)
        around = F.pad(sentence, (w, w), value=-1).unfold(0, 2 * w + 1, 1)  # (N, 2w + 1)
        near = (offsets.abs() <= reach.unsqueeze(-1)) & (offsets != 0)
        mask = (around == sentence.unsqueeze(-1)) & near
        draws = torch.rand(len(words), self.cfg.negative, device=ids.device)
        noise = torch.searchsorted(self.cdf, draws).clamp_(max=len(self.cdf) - 1)
        return {"words": words, "mask": mask, "noise": noise}

    def update_groups(self, update: str) -> list[dict[str, Any]]:
        return self.param_groups()  # every part steps both tables

    def update_loss(
        self, update: str, views: list[Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of one part of the batch; the parts step one after the other."""
        return self.part_loss(views[self.updates.index(update)], len(batch["input_ids"]))

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Every part's loss summed (what the step's updates minimise together)."""
        parts = [self.part_loss(v, len(batch["input_ids"])) for v in views]
        return sum(p[0] for p in parts), {"pair_loss": parts[-1][1]["pair_loss"]}

    def part_loss(self, view: dict[str, Any], rows: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """The sum of the part's pair losses per ROWS_PER_LR sentences of the batch (`rows`):
        with the loop's linear lr scaling (lr x batch / 256) each pair takes word2vec.c's step
        alpha at any batch size."""
        words, mask, noise = view["words"], view["mask"], view["noise"]
        w = self.cfg.window
        if len(words) == 0:  # every word of this part subsampled away: no pair, no step
            nothing = self.encoder.vectors(words[:0].new_zeros(1)).sum() * 0
            return nothing, {"pair_loss": nothing.detach()}
        vectors = F.pad(self.encoder.vectors(words), (0, 0, w, w))  # (N + 2w, D)
        context = vectors.unfold(0, 2 * w + 1, 1).transpose(1, 2)  # (N, 2w + 1, D)
        outputs = self.output(torch.cat([words.unsqueeze(1), noise], dim=1))  # (N, 1 + K, D)
        objective = skipgram_loss if self.cfg.mode == "skipgram" else cbow_loss
        total = objective(context, None, outputs, mask)
        counted = mask.sum() if self.cfg.mode == "skipgram" else mask.any(-1).sum()
        per_pair = total.detach() / counted.clamp_min(1)
        return total * (ROWS_PER_LR / rows), {"pair_loss": per_pair}

    def figures(self, batch: Batch) -> dict[str, Any]:
        """The 2-D map of the most frequent words, with analogy pairs drawn as arrows."""
        from selfsup.evaluate.word_vectors import word_map

        picture = word_map(self.encoder)
        return {} if picture is None else {"word map": picture}
