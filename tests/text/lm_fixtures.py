"""Helpers of the language-modelling tests: a training corpus of DIGITS_TRAIN sentences (so the
shared resume harness interrupts in the second epoch) and a small BERT with a WordPiece tokenizer
trained on STS-B's sentences (for the convergence runs)."""

import itertools
from pathlib import Path

from shared_data import stsb
from text_fixtures import CORPUS


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


def make_small_bert(folder: Path, sentences: list[str], vocab: int = 2000) -> Path:
    """A small BERT (2 layers, 64 wide, random weights) with a WordPiece tokenizer of `vocab`
    entries trained on `sentences`: small enough to pre-train for a minute on one CPU core."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        sentences, trainers.WordPieceTrainer(vocab_size=vocab, special_tokens=specials)
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[(t, tok.token_to_id(t)) for t in ("[CLS]", "[SEP]")],
    )
    names = dict(unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]")
    PreTrainedTokenizerFast(tokenizer_object=tok, mask_token="[MASK]", **names).save_pretrained(
        folder
    )
    BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=64,
    ).save_pretrained(folder)
    return folder


def stsb_sentences(split: str) -> list[str]:
    from selfsup.data.text import load_sts_file

    return load_sts_file(stsb() / f"sts-{split}.csv").sentences


def stsb_run_config(folder: Path, method: str):
    """One epoch of `method` from random init on the STS-B train sentences, scored on STS-B test
    (the convergence runs of the language-modelling tests)."""
    import selfsup

    sts = stsb()
    return selfsup.make_config(
        **{
            "data.source": f"sts:{sts / 'sts-train.csv'}",
            "eval.data": f"sts:{sts / 'sts-test.csv'}",
            "eval.protocols": "sts",
            "method.name": method,
            "model.path": str(folder),
            "model.pretrained": False,
            "model.max_length": 32,
            "optim.name": "adamw",
            "optim.lr": 4e-3,  # per 256 samples: 1e-3 at batch 64
            "train.batch_size": 64,
            "train.epochs": 1,
            "train.amp": False,
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
        }
    )
