"""Streamed text files (a line index, lines read on demand) and raw SNLI/MultiNLI rows grouped
into (premise, entailment, contradiction) triplets."""

import json
import os
import random
import signal
import tracemalloc

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from text_fixtures import CORPUS, write_sts

import selfsup
import selfsup.train
from selfsup.data import lines, load_data
from selfsup.data.lines import LineStore, Tokenized
from selfsup.errors import SelfsupError


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFSUP_CACHE_DIR", str(tmp_path / "cache"))


WORDS = ["alpha", "café", "ünïcode", "日本語", "naïve", "x", "the", "dog", "Ελληνικά"]
ODD_LINES = ["", "   ", "\t", "\u00a0", "\u3000 \u2003", " padded  ", "\u00a0real\u00a0"]


def write_messy(path, lines_wanted: int, seed: int = 0, crlf_every: int = 3) -> None:
    """Mixed line endings (LF, CRLF), blank and whitespace-only lines (ASCII and Unicode),
    non-ASCII words, a last line without a newline."""
    rng = random.Random(seed)
    out = []
    for i in range(lines_wanted):
        if rng.random() < 0.15:
            line = rng.choice(ODD_LINES)
        else:
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
        out.append(line + ("\r\n" if i % crlf_every == 0 else "\n"))
    out.append("last line without newline ✓")
    path.write_bytes("".join(out).encode("utf-8"))


def eager_lines(path) -> list[str]:
    return load_data(f"text:{path}", stream_text="false").train.sentences


def test_lazy_store_equals_eager_list_line_for_line(tmp_path, monkeypatch):
    path = tmp_path / "corpus.txt"
    write_messy(path, 60_000)  # about 2.5 MB
    assert path.stat().st_size > 2 << 20
    monkeypatch.setattr(lines, "CHUNK_BYTES", 100_003)  # many chunk boundaries, odd-sized
    eager = eager_lines(path)
    store = LineStore.open(path)
    assert len(store) == len(eager) and list(store) == eager
    assert store[-1] == "last line without newline ✓" and store[0] == eager[0]
    assert store[10:20] == eager[10:20]
    picks = torch.tensor([5, 0, len(eager) - 1, 77])
    assert store.take(picks) == [eager[i] for i in picks.tolist()]
    view = store.subset(torch.tensor([3, 9, 4])).subset(torch.tensor([2, 0]))
    assert list(view) == [eager[4], eager[3]]
    # The index was cached: a second open reads it back (memmap) and agrees.
    cached = LineStore.open(path)
    assert isinstance(cached.offsets, np.memmap) and np.array_equal(cached.offsets, store.offsets)


def test_edited_file_rebuilds_its_index_and_bad_utf8_is_named(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("one\ntwo\n")
    assert list(LineStore.open(path)) == ["one", "two"]
    path.write_text("one\n\nthree\nfour")
    os.utime(path, ns=(1, 10**18))  # a new mtime even within the clock's resolution
    assert list(LineStore.open(path)) == ["one", "three", "four"]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nalso fine\nbroken \xff here\n")
    with pytest.raises(SelfsupError, match=r"not UTF-8 text .* line 3"):
        LineStore.open(bad)
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n\t\n")
    with pytest.raises(SelfsupError, match="holds no sentences"):
        load_data(f"text:{blank}", stream_text="true")


def test_stream_choice_threshold_and_split(tmp_path, monkeypatch):
    path = tmp_path / "c.txt"
    path.write_text("\n".join(f"sentence number {i}" for i in range(200)) + "\n")
    eager = load_data(f"text:{path}")  # auto: a small file is read whole
    assert isinstance(eager.train.sentences, list) and eager.test is None
    monkeypatch.setattr(lines, "STREAM_THRESHOLD", 100)
    splits = load_data(f"text:{path}")  # auto: now above the threshold
    assert isinstance(splits.train.sentences, LineStore)
    # The held-out split is the last 10 % (at most 5000) of the lines, said in the data line.
    assert list(splits.train.sentences) == eager.train.sentences[:180]
    assert list(splits.test.sentences) == eager.train.sentences[180:]
    assert "last 20 lines held out" in splits.train.note and "streamed" in splits.test_from
    sub = splits.train.subset(torch.tensor([7, 1]))
    assert isinstance(sub.sentences, LineStore) and list(sub.sentences) == [
        "sentence number 7",
        "sentence number 1",
    ]
    assert isinstance(load_data(f"text:{path}", stream_text="false").train.sentences, list)
    with pytest.raises(SelfsupError, match=r"data\.stream_text must be one of"):
        load_data(f"text:{path}", stream_text="sometimes")


def test_index_of_a_50_mb_file_uses_little_memory(tmp_path):
    path = tmp_path / "big.txt"
    line = ("a fairly ordinary sentence of about a hundred bytes, repeated many " * 2)[:99]
    block = (line + "\n") * 10_000
    with open(path, "w") as f:
        for _ in range(50):
            f.write(block)
    size = path.stat().st_size
    assert size >= 50_000_000
    tracemalloc.start()
    try:
        store = LineStore.open(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(store) == 500_000 and store[123_456] == line
    assert peak < size / 4, f"indexing peaked at {peak / 2**20:.1f} MB for {size / 2**20:.0f} MB"


def test_lazy_tokens_tokenise_only_the_rows_asked(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("zero\none\ntwo\nthree\n")
    asked = []

    def tokenize(sentences):
        asked.append(list(sentences))
        return {
            "input_ids": torch.tensor([[len(s)] for s in sentences]),
            "attention_mask": torch.ones(len(sentences), 1, dtype=torch.long),
        }

    fields = Tokenized(LineStore.open(path), tokenize).fields()
    assert len(fields["input_ids"]) == 4 and fields["input_ids"].device.type == "cpu"
    batch = selfsup.train.batch_of(fields, torch.tensor([3, 1]), torch.device("cpu"))
    assert batch["input_ids"].tolist() == [[5], [3]] and batch["attention_mask"].shape == (2, 1)
    assert asked == [["three", "one"]]  # ids and mask of a batch: one tokenisation
    assert fields["input_ids"][1:3].tolist() == [[3], [3]]


@pytest.mark.parametrize(("n", "world"), [(100, 1), (103, 2), (7, 3), (64, 4)])
def test_epoch_order_is_the_samplers_order_without_a_list(n, world):
    from torch.utils.data import DistributedSampler

    for rank in range(world):
        sampler = DistributedSampler(
            range(n), num_replicas=world, rank=rank, shuffle=True, seed=5, drop_last=True
        )
        for epoch in (0, 3):
            sampler.set_epoch(epoch)
            assert selfsup.train.epoch_order(sampler).tolist() == list(sampler)


def run_config(tmp_path, tiny_bert, **extra):
    corpus = tmp_path / "corpus.txt"
    rows = CORPUS * 8
    corpus.write_text("\n".join(rows[:40]) + "\r\n\n" + "\r\n".join(rows[40:]))  # no final \n
    sts = write_sts(tmp_path / "sts")
    return selfsup.make_config(
        **{
            "data.source": f"text:{corpus}",
            "data.stream_text": "true",
            "method.name": "simcse",
            "model.path": str(tiny_bert),
            "optim.name": "adamw",
            "optim.lr": 1e-3,
            "train.batch_size": 16,
            "train.epochs": 2,
            "train.progress": False,
            "train.amp": False,
            "train.eval_every": 0,
            "train.report": False,
            "eval.data": f"sts:{sts}",
        }
        | extra
    )


def test_simcse_trains_on_a_streamed_file(tmp_path, tiny_bert, capsys):
    cfg = run_config(
        tmp_path,
        tiny_bert,
        **{
            "train.epochs": 1,
            "train.log_every": 1,
            "eval.data": None,
            "eval.protocols": "geometry",
        },
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    out = capsys.readouterr().out
    assert "data: text:" in out and "streamed" in out and "last 8 lines held out" in out
    assert "uniformity" in result.evaluation["selfsup"]  # on the 8 held-out lines
    assert "streamed" in result.evaluation["queries"]
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert len(losses) == 72 // 16 and all(np.isfinite(losses))
    from selfsup.search import build_index, search

    build_index(tmp_path / "run")
    hits = search(tmp_path / "run", "a man is playing a guitar", k=3)
    assert len(hits) == 3


@pytest.mark.slow  # the report imports sklearn, matplotlib: about 35 s alone on a busy core
def test_report_of_a_streamed_run_shows_neighbours(tmp_path, tiny_bert):
    overrides = {"train.epochs": 1, "train.report": True, "eval.data": None}
    selfsup.pretrain(run_config(tmp_path, tiny_bert, **overrides), tmp_path / "run")
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Nearest sentences" in report and "Held-out sentences searched among" in report


def test_resume_on_a_streamed_file_is_exact(tmp_path, tiny_bert, monkeypatch):
    cfg = run_config(tmp_path, tiny_bert, **{"eval.protocols": ""})
    selfsup.pretrain(cfg, tmp_path / "straight")
    original = selfsup.train.training_step
    calls = {"n": 0}

    def interrupt(*args, **kwargs):
        out = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 6:  # in the second epoch (4 steps an epoch)
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(selfsup.train, "training_step", interrupt)
    with pytest.raises(SelfsupError, match="--resume"):
        selfsup.pretrain(cfg, tmp_path / "resumed")
    monkeypatch.undo()
    selfsup.pretrain(cfg, tmp_path / "resumed", resume=True)
    a = load_file(str(tmp_path / "straight" / "encoder.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "encoder.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------ raw NLI rows

RAW = [  # (premise, hypothesis, label) as in SNLI's files
    ("A man plays a guitar.", "A man makes music.", "entailment"),
    ("A man plays a guitar.", "A man is asleep.", "contradiction"),
    ("A man plays a guitar.", "A man plays a song he wrote.", "neutral"),
    ("Two dogs run.", "Animals are moving.", "entailment"),
    ("Two dogs run.", "The dogs sleep.", "contradiction"),
    ("Two dogs run.", "Dogs are outside.", "entailment"),  # a second entailment, no partner
    ("A child eats.", "Someone is eating.", "entailment"),  # no contradiction: dropped
    ("Two dogs run.", "Nothing moves.", "contradiction"),
    ("A woman reads.", "A woman sleeps.", "-"),  # no gold label: skipped
]
WANT = [
    ("A man plays a guitar.", "A man makes music.", "A man is asleep."),
    ("Two dogs run.", "Animals are moving.", "The dogs sleep."),
    ("Two dogs run.", "Dogs are outside.", "Nothing moves."),
]


def triplets(data):
    return list(zip(data.sentences, data.positives, data.negatives, strict=True))


def test_raw_snli_rows_group_into_triplets(tmp_path):
    csv_file = tmp_path / "snli.csv"
    with open(csv_file, "w", newline="") as f:
        import csv

        writer = csv.writer(f)
        writer.writerow(["premise", "hypothesis", "label"])
        writer.writerows(RAW)
    data = load_data(f"nli:{csv_file}").train
    assert triplets(data) == WANT and "3 (premise, entailment, contradiction)" in data.note

    # MultiNLI's JSONL (sentence1, sentence2, gold_label and more keys).
    jsonl = tmp_path / "mnli.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"gold_label": lab, "sentence1": p, "sentence2": h, "genre": "x"}) + "\n"
            for p, h, lab in RAW
        )
    )
    assert triplets(load_data(f"nli:{jsonl}").train) == WANT

    # Hugging Face's integer labels (0 entailment, 1 neutral, 2 contradiction, -1 none), and
    # the columns named in the spec (label=COLUMN marks the third as the labels).
    codes = {"entailment": "0", "neutral": "1", "contradiction": "2", "-": "-1"}
    tsv = tmp_path / "hf.tsv"
    tsv.write_text("p\th\ty\n" + "".join(f"{p}\t{h}\t{codes[lab]}\n" for p, h, lab in RAW))
    assert triplets(load_data(f"nli:{tsv}#p,h,label=y").train) == WANT


def test_raw_nli_rows_that_cannot_be_grouped_are_one_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    rows = [("A cat sits.", "An animal sits.", "entailment"), ("A cat sits.", "No.", "maybe")]
    bad.write_text(
        "".join(json.dumps({"premise": p, "hypothesis": h, "label": y}) + "\n" for p, h, y in rows)
    )
    with pytest.raises(SelfsupError, match="data row 2: label 'maybe' is not entailment"):
        load_data(f"nli:{bad}")
    lonely = tmp_path / "lonely.csv"
    lonely.write_text(
        "premise,hypothesis,label\nA cat sits.,An animal sits.,entailment\n"
        "A dog barks.,Nobody barks.,contradiction\n"
    )
    with pytest.raises(SelfsupError, match=r"no premise .* has both an entailment and a contra"):
        load_data(f"nli:{lonely}")
    with pytest.raises(SelfsupError, match="has no column 'nope'"):
        load_data(f"nli:{lonely}#premise,hypothesis,label=nope")
    # A file with a hard-negative column is read as triplets, as before.
    ready = tmp_path / "ready.csv"
    ready.write_text("sent0,sent1,hard_neg,label\na,b,c,x\n")
    assert triplets(load_data(f"nli:{ready}").train) == [("a", "b", "c")]


def test_supervised_simcse_trains_on_raw_nli_rows(tmp_path, tiny_bert):
    raw = tmp_path / "snli.jsonl"
    rows = []
    for i, sentence in enumerate(CORPUS * 2):
        rows.append(
            {"sentence1": sentence, "sentence2": CORPUS[i % 10], "gold_label": "entailment"}
        )
        rows.append(
            {
                "sentence1": sentence,
                "sentence2": CORPUS[(i + 3) % 10],
                "gold_label": "contradiction",
            }
        )
    raw.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = run_config(
        tmp_path,
        tiny_bert,
        **{"data.source": f"nli:{raw}", "method.name": "simcse_sup", "train.batch_size": 4},
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    assert -1 <= result.evaluation["selfsup"]["sts_spearman"] <= 1
