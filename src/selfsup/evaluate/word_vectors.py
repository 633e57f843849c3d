"""Word-vector evaluation: word similarity (Spearman vs human scores, WordSim-353 / SimLex-999
tab format) and analogies (questions-words.txt, 3CosAdd top-1 per section and overall), each
with the vocabulary's coverage; the baselines beside them (random vectors, and the corpus's
PPMI co-occurrence vectors truncated by SVD, Levy & Goldberg 2014); the report's word map.

Every function reads a vocabulary (words, most frequent first) and a (V, D) table, so the
learned vectors, the baselines and gensim's vectors are scored by the same code. As gensim's
`evaluate_word_pairs` / `evaluate_word_analogies` (and word2vec.c's compute-accuracy): words
are matched case-insensitively (our vocabulary is lower-case), a question with a word outside
the first `restrict_vocab` words is skipped and counted as not answerable, the three question
words are never an answer; a tie with the expected word is a miss.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.errors import SelfsupError

ENV = "SELFSUP_WORD_EVAL_DIR"  # a folder holding wordsim353.tsv, questions-words.txt, ...
WORDSIM = "wordsim353.tsv"
SIMLEX = "simlex999.txt"
ANALOGIES = "questions-words.txt"
RESTRICT_VOCAB = 300_000  # gensim's evaluate_word_analogies default
# pairs drawn as arrows on the word map (the analogy file's "family" section's kind)
MAP_PAIRS = (
    ("man", "woman"),
    ("king", "queen"),
    ("boy", "girl"),
    ("brother", "sister"),
    ("father", "mother"),
    ("son", "daughter"),
    ("husband", "wife"),
    ("uncle", "aunt"),
    ("he", "she"),
    ("prince", "princess"),
)


def benchmark_file(name: str) -> Path:
    """A word benchmark file: from $SELFSUP_WORD_EVAL_DIR, else gensim's test data (install
    the `words` extra: pip install 'selfsup[words]')."""
    folders = [Path(os.environ[ENV])] if os.environ.get(ENV) else []
    spec = importlib.util.find_spec("gensim")
    if spec is not None and spec.origin:
        folders.append(Path(spec.origin).parent / "test" / "test_data")
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    raise SelfsupError(
        f"no {name} found (looked in {', '.join(map(str, folders)) or 'nowhere'}): install "
        f"gensim, whose test data ships it (pip install 'selfsup[words]'), or set {ENV} to a "
        "folder holding it"
    )


def read_word_pairs(path: str | Path) -> list[tuple[str, str, float]]:
    """(word, word, human score) rows of a tab-separated file; '#' lines are comments."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.strip().split("\t")
        if not line.strip() or line.startswith("#") or len(parts) != 3:
            continue
        try:
            rows.append((parts[0].lower(), parts[1].lower(), float(parts[2])))
        except ValueError:
            continue
    if not rows:
        raise SelfsupError(f"{path} holds no 'word<TAB>word<TAB>score' rows")
    return rows


def read_analogies(path: str | Path) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """The sections of a questions-words file: (name, [(a, b, c, d), ...]) in order."""
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith(": "):
            sections.append((line[2:].strip(), []))
        elif len(line.split()) == 4:
            if not sections:
                raise SelfsupError(f"{path}: a question before the first ': section' line")
            a, b, c, d = line.lower().split()
            sections[-1][1].append((a, b, c, d))
    if not sections:
        raise SelfsupError(f"{path} holds no ': section' followed by 4-word questions")
    return sections


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    v = vectors.detach().float()
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


def word_similarity(
    words: Sequence[str], vectors: torch.Tensor, pairs: Sequence[tuple[str, str, float]]
) -> dict[str, float]:
    """Spearman of cosine vs the human scores over the pairs whose words are both known,
    and how many pairs that was."""
    from scipy.stats import spearmanr

    index = {w: i for i, w in enumerate(words)}
    unit = _unit(vectors)
    model, gold = [], []
    for a, b, score in pairs:
        if a in index and b in index:
            model.append(float(unit[index[a]] @ unit[index[b]]))
            gold.append(score)
    if len(gold) < 2:
        rho = float("nan")
    elif max(model) - min(model) < 1e-12:
        rho = 0.0  # a table that gives every pair one similarity ranks nothing
    else:
        rho = float(spearmanr(gold, model).statistic)
    return {"spearman": rho, "pairs_known": float(len(gold)), "pairs": float(len(pairs))}


def analogy_accuracy(
    words: Sequence[str],
    vectors: torch.Tensor,
    sections: Sequence[tuple[str, Sequence[tuple[str, str, str, str]]]],
    restrict_vocab: int = RESTRICT_VOCAB,
    batch: int = 1024,
) -> dict[str, float]:
    """3CosAdd top-1 over the answerable questions (all four words among the first
    `restrict_vocab` words), per section and overall, with the count answerable."""
    index = {w: i for i, w in enumerate(words[:restrict_vocab])}
    unit = _unit(vectors[: len(index)])
    out: dict[str, float] = {}
    correct_all = answerable_all = total_all = 0
    for name, questions in sections:
        known = [q for q in questions if all(w in index for w in q)]
        correct = 0
        for start in range(0, len(known), batch):
            rows = torch.tensor([[index[w] for w in q] for q in known[start : start + batch]])
            query = unit[rows[:, 1]] - unit[rows[:, 0]] + unit[rows[:, 2]]
            scores = query @ unit.T
            expected = scores.gather(1, rows[:, 3:]).squeeze(1)
            scores.scatter_(1, rows, -float("inf"))  # a, b, c and d itself out of the rivals
            correct += int((expected > scores.max(1).values).sum())
        out[f"analogy_{name}_accuracy"] = correct / len(known) if known else float("nan")
        correct_all += correct
        answerable_all += len(known)
        total_all += len(questions)
    out["analogy_accuracy"] = correct_all / answerable_all if answerable_all else float("nan")
    out["analogy_answerable"] = float(answerable_all)
    out["analogy_questions"] = float(total_all)
    return out


def word_figures(
    words: Sequence[str], vectors: torch.Tensor, restrict_vocab: int = RESTRICT_VOCAB
) -> dict[str, float]:
    """WordSim-353 and SimLex-999 Spearman and the analogy accuracy of one table."""
    out = {}
    for tag, name in (("wordsim353", WORDSIM), ("simlex999", SIMLEX)):
        for key, value in word_similarity(
            words, vectors, read_word_pairs(benchmark_file(name))
        ).items():
            out[f"{tag}_{key}"] = value
    sections = read_analogies(benchmark_file(ANALOGIES))
    return out | analogy_accuracy(words, vectors, sections, restrict_vocab)


def random_vectors(size: int, dim: int, seed: int = 0) -> torch.Tensor:
    """The random-vectors baseline: a seeded Gaussian table of the same shape."""
    return torch.randn(size, dim, generator=torch.Generator().manual_seed(seed))


def ppmi_vectors(
    sentences: Iterable[Sequence[int]], size: int, window: int, dim: int, cds: float = 0.75
) -> torch.Tensor:
    """The raw-input baseline: each word's positive PMI with the words within `window` of it
    (context counts smoothed to the power `cds`, Levy et al. 2015), truncated by SVD to `dim`
    (U sqrt(S), the symmetric weighting)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import svds

    rows, cols = [], []
    for ids in sentences:
        a = np.asarray(ids, dtype=np.int64)
        for o in range(1, window + 1):
            if len(a) > o:
                rows += [a[:-o], a[o:]]
                cols += [a[o:], a[:-o]]
    if not rows:
        raise SelfsupError("no word has a neighbour within the window: no co-occurrences")
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = coo_matrix((np.ones(len(r), np.float64), (r, c)), shape=(size, size)).tocsr()
    counts.sum_duplicates()
    total = counts.sum()
    word = np.asarray(counts.sum(1)).ravel() / total
    context = np.asarray(counts.sum(0)).ravel() ** cds
    context /= context.sum()
    pmi = counts.tocoo()
    values = np.log(pmi.data / total / (word[pmi.row] * context[pmi.col]))
    keep = values > 0
    ppmi = coo_matrix((values[keep], (pmi.row[keep], pmi.col[keep])), shape=(size, size)).tocsr()
    k = min(dim, size - 1)
    u, s, _ = svds(ppmi.astype(np.float32), k=k, random_state=0)
    return torch.from_numpy(np.ascontiguousarray(u * np.sqrt(s))).float()


def word_map(encoder: Any, top: int = 150, size: int = 900) -> np.ndarray | None:
    """A 2-D map of the `top` most frequent words with the analogy pairs known to the
    vocabulary drawn as arrows (man -> woman, king -> queen, ...), as an RGB picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    words = encoder.vocabulary.words
    pairs = [(a, b) for a, b in MAP_PAIRS if a in encoder.vocabulary and b in encoder.vocabulary]
    chosen = list(dict.fromkeys([*words[: min(top, len(words))], *[w for p in pairs for w in p]]))
    if len(chosen) < 3:
        return None
    unit = encoder.unit_vectors()[[encoder.vocabulary.index(w) for w in chosen]]
    # the plane: PCA of the pairs' words when there are a few (where the parallel offsets
    # show, as in Mikolov et al.'s figure), else of all the chosen words
    basis = unit[[chosen.index(w) for p in pairs for w in p]] if len(pairs) >= 3 else unit
    mean = basis.mean(0)
    _, _, v = torch.linalg.svd(basis - mean, full_matrices=False)
    xy = ((unit - mean) @ v[:2].T).numpy()
    place = {w: xy[i] for i, w in enumerate(chosen)}
    fig, ax = plt.subplots(figsize=(size / 100, size / 100), dpi=100)
    ax.scatter(xy[:, 0], xy[:, 1], s=4, color="0.6")
    for w, (x, y) in place.items():
        ax.annotate(w, (x, y), fontsize=6, color="0.35")
    for a, b in pairs:
        (x0, y0), (x1, y1) = place[a], place[b]
        ax.annotate("", (x1, y1), (x0, y0), arrowprops={"arrowstyle": "->", "color": "C3"})
        for w in (a, b):
            ax.annotate(w, place[w], fontsize=8, color="C3", weight="bold")
    plane = "the analogy pairs" if len(pairs) >= 3 else "these words"
    ax.set_title(
        f"The {min(top, len(words))} most frequent words on the PCA plane of {plane}; "
        "arrows: analogy pairs",
        fontsize=9,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return picture


def _table(features: Any) -> Any:
    encoder = features.model.encoder if features.model is not None else None
    if getattr(encoder, "kind", None) != "word-vectors":
        raise SelfsupError(
            "the word_similarity and analogy protocols score a word-vector table (a word2vec "
            "run); this encoder embeds sentences: use sts or retrieval"
        )
    return encoder


def word_similarity_files() -> None:
    """Raise before training when the word-similarity files cannot be found."""
    for name in (WORDSIM, SIMLEX):
        benchmark_file(name)


def analogy_file() -> None:
    """Raise before training when questions-words.txt cannot be found."""
    benchmark_file(ANALOGIES)


def word_similarity_protocol(features: Any) -> dict[str, float]:
    """WordSim-353 and SimLex-999 Spearman of the learned table, beside random vectors."""
    encoder = _table(features)
    words, learned = encoder.vocabulary.words, encoder.vectors.weight
    baseline = random_vectors(*learned.shape)
    out = {}
    for tag, name in (("wordsim353", WORDSIM), ("simlex999", SIMLEX)):
        pairs = read_word_pairs(benchmark_file(name))
        figures = word_similarity(words, learned, pairs)
        out[f"{tag}_spearman"] = figures["spearman"]
        out[f"{tag}_pairs_known"] = figures["pairs_known"]
        out[f"{tag}_spearman_random_vectors"] = word_similarity(words, baseline, pairs)["spearman"]
    return out


def analogy_protocol(features: Any) -> dict[str, float]:
    """3CosAdd top-1 on questions-words.txt (answerable questions), beside random vectors."""
    encoder = _table(features)
    words, learned = encoder.vocabulary.words, encoder.vectors.weight
    sections = read_analogies(benchmark_file(ANALOGIES))
    out = analogy_accuracy(words, learned, sections)
    random = analogy_accuracy(words, random_vectors(*learned.shape), sections)
    return out | {"analogy_random_vectors_accuracy": random["analogy_accuracy"]}
