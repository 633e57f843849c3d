"""Caption quality and distinctiveness: BLEU-1..4 and CIDEr-D as the COCO caption toolkit
computes them (tylin/coco-caption, pycocoevalcap/bleu/bleu_scorer.py and
cider/cider_scorer.py), and text-to-image R@1 of generated captions with ties counted against.

BLEU: corpus-level clipped n-gram precisions (each n-gram's count clipped at its most
frequent count in one reference), the geometric mean of the 1..n precisions (with the
toolkit's 1e-15 / 1e-9 guards), and the brevity penalty exp(1 - r/c) when the summed candidate
length c falls short of r, the summed reference lengths closest to each candidate (the
toolkit's `option='closest'`, ties to the shorter).

CIDEr-D: per image, for n = 1..4, the TF-IDF vectors of candidate and each reference (document
frequencies counted over the evaluated images' reference sets, idf = log(#images) -
log(max(1, df))), the candidate's weights clipped at the reference's (min(c, r) * r), the
cosine, times the Gaussian length penalty exp(-(l_c - l_r)^2 / (2 sigma^2)) with sigma 6; the
mean over n and references, times 10; the corpus figure is the mean over images. As in the
toolkit, the "length" is the candidate's count of bigrams (its `if n == 1` counts the n-gram
table at index 1), so a one-word caption has length 0.

Captions are compared as their words (`selfsup.models.captioner.words`: lower case, no
punctuation), standing in for the toolkit's PTB tokenizer.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate.ties import label_hits
from selfsup.models.captioner import words

NGRAMS = 4
SIGMA = 6.0


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(
        tuple(tokens[i : i + k]) for k in range(1, n + 1) for i in range(len(tokens) - k + 1)
    )


def _check(hypotheses: list[str], references: list[list[str]]) -> None:
    if len(hypotheses) != len(references):
        raise SelfsupError(
            f"{len(hypotheses)} generated captions but {len(references)} reference sets"
        )
    if not hypotheses:
        raise SelfsupError("no captions to score")
    if any(not refs for refs in references):
        raise SelfsupError("every image needs at least one reference caption to be scored")


def bleu(hypotheses: list[str], references: list[list[str]], n: int = NGRAMS) -> list[float]:
    """Corpus BLEU-1..n of one caption per image against its reference captions."""
    _check(hypotheses, references)
    tiny, small = 1e-15, 1e-9
    correct, guess = [0] * n, [0] * n
    test_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references, strict=True):
        h = words(hyp)
        ref_tokens = [words(r) for r in refs]
        most: Counter = Counter()
        for r in ref_tokens:
            for gram, count in _ngrams(r, n).items():
                most[gram] = max(most[gram], count)
        for gram, count in _ngrams(h, n).items():
            correct[len(gram) - 1] += min(most.get(gram, 0), count)
        for k in range(n):
            guess[k] += max(0, len(h) - k)
        test_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in ref_tokens)[1]
    scores, product = [], 1.0
    for k in range(n):
        product *= (correct[k] + tiny) / (guess[k] + small)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (test_len + tiny) / (ref_len + small)
    if ratio < 1:
        scores = [s * math.exp(1 - 1 / ratio) for s in scores]
    return scores


def cider_d(
    hypotheses: list[str], references: list[list[str]], n: int = NGRAMS, sigma: float = SIGMA
) -> tuple[float, list[float]]:
    """CIDEr-D of one caption per image: (the corpus mean, the per-image scores)."""
    _check(hypotheses, references)
    ref_counts = [[_ngrams(words(r), n) for r in refs] for refs in references]
    df: Counter = Counter()
    for refs in ref_counts:
        df.update({gram for counts in refs for gram in counts})
    log_images = math.log(len(references))

    def vector(counts: Counter) -> tuple[list[dict], list[float], int]:
        vec: list[dict] = [{} for _ in range(n)]
        norm = [0.0] * n
        length = 0
        for gram, tf in counts.items():
            k = len(gram) - 1
            vec[k][gram] = tf * (log_images - math.log(max(1.0, df[gram])))
            norm[k] += vec[k][gram] ** 2
            if k == 1:
                length += tf
        return vec, [math.sqrt(x) for x in norm], length

    scores = []
    for hyp, refs in zip(hypotheses, ref_counts, strict=True):
        vec, norm, length = vector(_ngrams(words(hyp), n))
        total = [0.0] * n
        for ref in refs:
            vec_r, norm_r, length_r = vector(ref)
            penalty = math.exp(-((length - length_r) ** 2) / (2 * sigma**2))
            for k in range(n):
                val = sum(
                    min(w, vec_r[k].get(g, 0.0)) * vec_r[k].get(g, 0.0) for g, w in vec[k].items()
                )
                if norm[k] != 0 and norm_r[k] != 0:
                    val /= norm[k] * norm_r[k]
                total[k] += val * penalty
        scores.append(sum(total) / n / len(refs) * 10.0)
    return sum(scores) / len(scores), scores


def text_to_image_r1(text: torch.Tensor, images: torch.Tensor) -> float:
    """R@1 of caption i finding image i among all the images by cosine: a hit only when image i
    scores strictly above every other image (a tie counts against the query)."""
    if text.shape != images.shape or text.dim() != 2:
        raise SelfsupError(
            f"text and image embeddings must be (N, D) alike; got {tuple(text.shape)} and "
            f"{tuple(images.shape)}"
        )
    if not (torch.isfinite(text).all() and torch.isfinite(images).all()):
        raise SelfsupError("the retriever's embeddings hold NaN or inf; nothing is scored")
    t = torch.nn.functional.normalize(text.double(), dim=1)
    v = torch.nn.functional.normalize(images.double(), dim=1)
    hits = label_hits(t @ v.T, torch.arange(len(t)))
    return hits.double().mean().item()


@torch.no_grad()
def caption_scores(
    hypotheses: list[str],
    references: list[list[str]],
    retriever: Any,
    images: torch.Tensor,
    batch: int = 256,
) -> dict[str, float]:
    """BLEU-4, CIDEr-D and text-to-image R@1 (among `images`, by the `clip` encoder
    `retriever`) of one generated caption per image; an empty caption is scored as it is."""
    device = next(retriever.parameters()).device
    retriever.eval()
    text = torch.cat(
        [
            retriever.encode_text(hypotheses[i : i + batch]).cpu()
            for i in range(0, len(images), batch)
        ]
    )
    seen = torch.cat(
        [
            retriever.encode_image(retriever.preprocess(images[i : i + batch]).to(device)).cpu()
            for i in range(0, len(images), batch)
        ]
    )
    return {
        "bleu4": bleu(hypotheses, references)[3],
        "cider_d": cider_d(hypotheses, references)[0],
        "r1": text_to_image_r1(text, seen),
    }
