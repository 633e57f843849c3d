"""selfsup's word2vec beside gensim's Word2Vec on the same corpus and settings.

Run by hand (gensim is the `words` extra):
`python benchmarks/word2vec_gensim.py [--tokens 10000000] [--epochs 5] [--threads 2]
[--mode skipgram|cbow]`. The corpus is GCIDE's paragraphs then WordNet's glosses (the
`gcide` and `wordnet` sources), cut to the first --tokens words. Both train with the same
dimension, window, negatives, epochs, min_count, sample and the same word tokens (gensim is
handed selfsup's tokenisation); gensim with workers=--threads, selfsup with torch on --threads.
Printed: a markdown table of training words/s (corpus words x epochs / training seconds),
WordSim-353 and SimLex-999 Spearman (pairs known), questions-words 3CosAdd accuracy over the
answerable questions (answerable / all), for selfsup, gensim, random vectors and the corpus's
PPMI co-occurrence vectors truncated by SVD to the same dimension (the raw-input row).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import selfsup
from selfsup.config import DataConfig
from selfsup.data.text import load_wordnet
from selfsup.data.words import load_dictd, words
from selfsup.evaluate.word_vectors import ppmi_vectors, random_vectors, word_figures


def corpus(tokens: int) -> list[list[str]]:
    """GCIDE's paragraphs then WordNet's glosses, as word lists, cut to `tokens` words."""
    out, count = [], 0
    for load in (load_dictd, load_wordnet):
        for sentence in load(None, DataConfig()).train.sentences:
            found = words(sentence)
            if found:
                out.append(found)
                count += len(found)
                if count >= tokens:
                    return out
    return out


def train_selfsup(sentences: list[list[str]], args: argparse.Namespace) -> tuple[object, float]:
    """A selfsup run on the corpus (written as one sentence a line); its table and the words
    per second of its training steps."""
    folder = Path(tempfile.mkdtemp(prefix="w2v-bench-"))
    text = folder / "corpus.txt"
    text.write_text("\n".join(" ".join(s) for s in sentences) + "\n")
    result = selfsup.pretrain(
        out=folder / "run",
        data__source=f"text:{text}",
        method__name="word2vec",
        method__mode=args.mode,
        method__dim=args.dim,
        method__window=args.window,
        method__negative=args.negative,
        method__min_count=args.min_count,
        method__sample=args.sample,
        train__epochs=args.epochs,
        train__batch_size=args.batch,
        train__progress=False,
        eval__protocols="geometry",
    )
    rows_per_s = result.samples_per_second
    words_per_row = sum(map(len, sentences)) / len(sentences)
    return selfsup.load(result.run_dir), rows_per_s * words_per_row


def train_gensim(sentences: list[list[str]], args: argparse.Namespace) -> tuple[object, float]:
    from gensim.models import Word2Vec

    model = Word2Vec(
        vector_size=args.dim,
        window=args.window,
        negative=args.negative,
        hs=0,
        min_count=args.min_count,
        sample=args.sample,
        sg=int(args.mode == "skipgram"),
        alpha=0.025 if args.mode == "skipgram" else 0.05,
        workers=args.threads,
        seed=0,
    )
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=args.epochs)
    seconds = time.perf_counter() - start
    return model.wv, sum(map(len, sentences)) * args.epochs / seconds


def row(name: str, figures: dict[str, float], speed: float | None) -> str:
    """One markdown row of the table."""
    speed_cell = f"{speed:,.0f}" if speed else "-"
    return (
        f"| {name} | {speed_cell} | {figures['wordsim353_spearman']:.4f} "
        f"({figures['wordsim353_pairs_known']:.0f}) | {figures['simlex999_spearman']:.4f} "
        f"({figures['simlex999_pairs_known']:.0f}) | {100 * figures['analogy_accuracy']:.2f} "
        f"({figures['analogy_answerable']:.0f} / {figures['analogy_questions']:.0f}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=10_000_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", choices=("skipgram", "cbow"), default="skipgram")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--sample", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=256, help="selfsup's sentences per step")
    parser.add_argument("--no-ppmi", action="store_true", help="skip the PPMI-SVD row")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sentences = corpus(args.tokens)
    print(f"corpus: {len(sentences):,} sentences, {sum(map(len, sentences)):,} words")
    table, ours_speed = train_selfsup(sentences, args)
    wv, gensim_speed = train_gensim(sentences, args)
    vocab = table.vocabulary.words
    learned = table.vectors.weight.detach()
    lines = [
        f"{args.mode}, dim {args.dim}, window {args.window}, negative {args.negative}, "
        f"min_count {args.min_count}, sample {args.sample:g}, {args.epochs} epochs, "
        f"{args.threads} thread(s); {len(vocab):,} words in selfsup's vocabulary, "
        f"{len(wv.index_to_key):,} in gensim's",
        "",
        "| vectors | words/s | WordSim-353 Spearman (pairs) | SimLex-999 Spearman (pairs) | "
        "analogy top-1 % (answerable / all) |",
        "|---|---|---|---|---|",
        row("selfsup word2vec", word_figures(vocab, learned), ours_speed),
        row(
            "gensim Word2Vec",
            word_figures(list(wv.index_to_key), torch.from_numpy(wv.vectors)),
            gensim_speed,
        ),
        row("random vectors", word_figures(vocab, random_vectors(*learned.shape)), None),
    ]
    if not args.no_ppmi:
        ids = ([table.vocabulary.index(w) for w in s if w in table.vocabulary] for s in sentences)
        ppmi = ppmi_vectors(ids, len(vocab), args.window, args.dim)
        lines.append(row(f"PPMI-SVD (window {args.window})", word_figures(vocab, ppmi), None))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
