"""word2vec: the losses against a plain per-pair reference, the sampling (subsampling, dynamic
windows, negatives), the vocabulary and its errors, a tiny run end to end (export, embed,
search, analogy), exact resume, and a slow convergence run on WordNet's glosses.

No 1-vs-2-process test: nothing is gathered or synchronised in the loss (each process steps
its own sentences; DDP averages the sparse gradients like any other).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from method_harness import assert_config_resumes_exactly

import selfsup
from selfsup.data.words import build_vocabulary, gcide_paragraphs, words
from selfsup.errors import SelfsupError
from selfsup.losses import cbow_loss, skipgram_loss
from selfsup.methods.word2vec import Word2Vec, Word2VecConfig, keep_probability, noise_cdf
from selfsup.models.word_vectors import UnknownWordsWarning

# A tiny corpus with structure: royals and commoners, each with a gender
TEMPLATES = [
    "the {a} and the {b} walked to the castle",
    "a {a} spoke with a {b} in the village",
    "the {a} ruled beside the {b}",
]
PAIRS = [("king", "queen"), ("man", "woman"), ("prince", "princess"), ("boy", "girl")]
CORPUS = [t.format(a=a, b=b) for t in TEMPLATES for a, b in PAIRS for _ in range(3)]
FAST = {
    "method.name": "word2vec",
    "method.min_count": 1,
    "method.dim": 8,
    "method.sample": 0.0,
    "train.epochs": 2,
    "train.batch_size": 8,
    "train.progress": False,
    "train.eval_every": 0,
    "eval.protocols": "",
    "train.report": False,
}


def corpus_file(tmp_path, lines=CORPUS, name="corpus.txt"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def fast_config(tmp_path, **overrides):
    return selfsup.make_config(
        **(FAST | {"data.source": f"text:{corpus_file(tmp_path)}"} | overrides)
    )


# -- losses ------------------------------------------------------------------------------------


def _log_sigmoid(x):
    return -F.softplus(-x)


def reference_skipgram(context, target, noise, mask):
    """word2vec.c's skip-gram: for every real pair, the context word's vector against the
    centre's output vector and the centre's noise vectors, one pair at a time."""
    total = torch.zeros(())
    for p in range(context.shape[0]):
        for c in range(context.shape[1]):
            if mask[p, c]:
                v = context[p, c]
                total = total - _log_sigmoid(v @ target[p])
                for n in noise[p]:
                    total = total - _log_sigmoid(-(v @ n))
    return total


def reference_cbow(context, target, noise, mask):
    """CBOW with cbow_mean: the average of the window's vectors against the centre."""
    total = torch.zeros(())
    for p in range(context.shape[0]):
        chosen = [context[p, c] for c in range(context.shape[1]) if mask[p, c]]
        if not chosen:
            continue
        h = torch.stack(chosen).mean(0)
        total = total - _log_sigmoid(h @ target[p])
        for n in noise[p]:
            total = total - _log_sigmoid(-(h @ n))
    return total


def _loss_inputs(seed=0, positions=5, slots=4, negatives=3, dim=6):
    g = torch.Generator().manual_seed(seed)
    context = torch.randn(positions, slots, dim, generator=g, dtype=torch.float64)
    target = torch.randn(positions, dim, generator=g, dtype=torch.float64)
    noise = torch.randn(positions, negatives, dim, generator=g, dtype=torch.float64)
    mask = torch.rand(positions, slots, generator=g) < 0.6
    mask[0] = False  # a centre with no context word
    return [t.requires_grad_() for t in (context, target, noise)], mask


def test_skipgram_loss_matches_the_per_pair_reference_values_and_gradients():
    (context, target, noise), mask = _loss_inputs()
    ours = skipgram_loss(context, target, noise, mask)
    grads = torch.autograd.grad(ours, (context, target, noise))
    ref = reference_skipgram(context, target, noise, mask)
    ref_grads = torch.autograd.grad(ref, (context, target, noise))
    torch.testing.assert_close(ours, ref)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b)


def test_cbow_loss_matches_the_reference_and_sends_each_word_the_whole_error():
    (context, target, noise), mask = _loss_inputs(seed=1)
    ours = cbow_loss(context, target, noise, mask)
    ref = reference_cbow(context, target, noise, mask)
    torch.testing.assert_close(ours, ref)
    g_ours = torch.autograd.grad(ours, (context, target, noise))
    g_ref = torch.autograd.grad(ref, (context, target, noise))
    torch.testing.assert_close(g_ours[1], g_ref[1])  # output vectors: as the reference
    torch.testing.assert_close(g_ours[2], g_ref[2])
    # word2vec.c / gensim (cbow_mean=1): neu1e is added to every context word undivided, so
    # each one's gradient is the reference's (through the mean) times the window's count
    count = mask.sum(1, keepdim=True).clamp_min(1).unsqueeze(-1).to(context.dtype)
    torch.testing.assert_close(g_ours[0], g_ref[0] * count * mask.unsqueeze(-1))


# -- sampling ----------------------------------------------------------------------------------


def test_subsampling_is_word2vec_c_formula():
    counts = torch.tensor([1000, 100, 10, 1])
    keep = keep_probability(counts, 1e-2)
    for count, p in zip(counts.tolist(), keep.tolist(), strict=True):
        f = count / 1111
        want = min(1.0, (math.sqrt(f / 1e-2) + 1) * 1e-2 / f)  # word2vec.c's `ran`
        assert p == pytest.approx(want, rel=1e-5)
    assert torch.all(keep_probability(counts, 0.0) == 1)


def test_negatives_follow_the_unigram_to_the_three_quarters():
    counts = torch.tensor([800, 100, 100])
    cdf = noise_cdf(counts, 0.75)
    draws = torch.searchsorted(cdf, torch.rand(200_000, generator=torch.Generator().manual_seed(0)))
    share = torch.bincount(draws, minlength=3).double() / len(draws)
    want = counts.double() ** 0.75 / (counts.double() ** 0.75).sum()
    torch.testing.assert_close(share, want, atol=5e-3, rtol=0)


def _method(tmp_path, **params):
    cfg = Word2VecConfig(**({"min_count": 1, "dim": 8, "sample": 0.0} | params))
    split = selfsup.data.text.TextData(CORPUS, None, None, "tiny")
    return Word2Vec(Word2Vec.own_encoder_spec(cfg, split), cfg, None)


def test_windows_stay_in_their_sentence_and_shrink_at_random(tmp_path):
    method = _method(tmp_path, window=3)
    fields = method.encoder.tokenize_all(CORPUS[:8])
    torch.manual_seed(0)
    views = method.views(fields)
    assert len(views) == len(method.updates)
    offsets = torch.arange(-3, 4)
    reaches = set()
    for view in views:
        mask = view["mask"]
        assert not mask[:, 3].any(), "a word is never its own context"
        # the kept words are the sentences' words in order (sample 0 keeps them all)
        for p in range(len(view["words"])):
            chosen = offsets[mask[p]]
            if len(chosen):
                reaches.add(int(chosen.abs().max()))
            for o in chosen.tolist():
                assert 0 <= p + o < len(view["words"])
    total = sum(len(v["words"]) for v in views)
    assert total == int(fields["attention_mask"].sum())
    assert reaches == {1, 2, 3}, "dynamic windows: every reach in 1..window occurs"
    # no window crosses a sentence: with one sentence per row, count pairs per row by hand
    first = method._stream(
        fields["input_ids"][:1],
        fields["attention_mask"][:1].bool(),
        torch.zeros_like(fields["input_ids"][:1]),
    )
    n = int(fields["attention_mask"][0].sum())
    assert len(first["words"]) == n
    near_end = first["mask"][n - 1]
    assert not near_end[4:].any(), "the last word has no right context"


def test_a_part_whose_words_are_all_subsampled_away_steps_nothing(tmp_path):
    method = _method(tmp_path)
    fields = method.encoder.tokenize_all(CORPUS[:8])
    fields["attention_mask"][:2] = 0  # the first part's sentences hold no word
    views = method.views(fields)
    assert len(views[0]["words"]) == 0
    loss, _ = method.update_loss("part1", views, fields)
    loss.backward()
    grad = method.encoder.vectors.weight.grad.coalesce().values()
    assert float(loss) == 0 and float(grad.abs().sum()) == 0


# -- vocabulary and errors ---------------------------------------------------------------------


def test_vocabulary_keeps_min_count_words_most_frequent_first():
    vocab = build_vocabulary(["b a a c", "a b"], min_count=2)
    assert vocab.words == ("a", "b") and vocab.counts == (3, 2)
    assert words("Don't STOP, 42 times!") == ["don't", "stop", "times"]


def test_gcide_markup_is_stripped():
    raw = 'Abuse \\A*buse"\\, v. t. To use ill; {misuse}.\n   [1913 Webster]\n\n   2. To deceive.'
    assert gcide_paragraphs(raw) == ["Abuse , v. t. To use ill; misuse.", "2. To deceive."]


def test_bad_corpora_fail_before_training(tmp_path):
    with pytest.raises(SelfsupError, match=r"vocabulary is empty.*min_count=1000"):
        selfsup.pretrain(fast_config(tmp_path, **{"method.min_count": 1000}), tmp_path / "r1")
    one = corpus_file(tmp_path, ["echo echo echo"] * 20, name="one-word.txt")
    cfg = fast_config(tmp_path, **{"data.source": f"text:{one}"})
    with pytest.raises(SelfsupError, match="vocabulary holds one word"):
        selfsup.pretrain(cfg, tmp_path / "r2")
    assert not (tmp_path / "r1" / "checkpoint.pt").exists()


def test_word2vec_is_judged_by_the_word_protocols_whose_files_are_checked_first(
    tmp_path, monkeypatch, capsys
):
    from selfsup.evaluate import word_vectors
    from selfsup.methods import get_method
    from selfsup.modalities import get_modality
    from selfsup.run_data import requested_protocols

    cfg = fast_config(tmp_path, **{"eval.protocols": None})
    assert requested_protocols(cfg, get_modality("text"), get_method("word2vec").protocols) == (
        "word_similarity",
        "analogy",
    )

    result = selfsup.pretrain(cfg, tmp_path / "judged")
    assert "wordsim353_spearman" in result.evaluation["selfsup"]
    assert "nothing here measures" not in capsys.readouterr().out

    def absent(name):
        raise SelfsupError(f"no {name} found: pip install 'selfsup[words]'")

    monkeypatch.setattr(word_vectors, "benchmark_file", absent)
    with pytest.raises(SelfsupError, match=r"wordsim353.*selfsup\[words\]"):
        selfsup.pretrain(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


# -- a tiny run end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("w2v")
    cfg = fast_config(tmp, **{"method.mode": "skipgram", "train.log_every": 1})
    selfsup.pretrain(cfg, tmp / "run")
    return tmp / "run"


def test_tiny_run_exports_a_word_table(tiny_run):
    meta = json.loads((tiny_run / "encoder.json").read_text())
    assert meta["kind"] == "word-vectors" and meta["out_dim"] == 8
    table = selfsup.load(tiny_run)
    assert "king" in table.vocabulary
    king, _ = selfsup.embed(tiny_run, ["king", "queen"])
    torch.testing.assert_close(torch.from_numpy(king), table.vectors.weight[table.row("king")])
    sentence = selfsup.embed(tiny_run, "the king ruled")[0]
    rows = [table.row(w) for w in ("the", "king", "ruled")]
    torch.testing.assert_close(torch.from_numpy(sentence), table.vectors.weight[rows].mean(0))


def test_unknown_words_are_named_never_silently_zeroed(tiny_run):
    with pytest.warns(UnknownWordsWarning, match="zeppelin"):
        vector = selfsup.embed(tiny_run, "the king and the zeppelin")
    assert torch.from_numpy(vector).norm() > 0
    with pytest.raises(SelfsupError, match="no word of 'zeppelin blimp'"):
        selfsup.embed(tiny_run, ["king", "zeppelin blimp"])


def test_analogy_answers_with_3cosadd_never_a_question_word(tiny_run):
    table = selfsup.load(tiny_run)
    answers = selfsup.analogy(tiny_run, "man", "king", "woman", k=len(table.vocabulary) - 3)
    assert {"man", "king", "woman"}.isdisjoint(w for w, _ in answers)
    unit = table.unit_vectors()
    query = unit[table.row("king")] - unit[table.row("man")] + unit[table.row("woman")]
    scores = {w: float(unit[table.row(w)] @ query / query.norm()) for w, _ in answers}
    assert answers[0][0] == max(scores, key=scores.get)
    assert selfsup.analogy(tiny_run, "man", "king", "woman") == answers[0][0]
    with pytest.raises(SelfsupError, match="outside the vocabulary: zeppelin"):
        selfsup.analogy(tiny_run, "man", "zeppelin", "woman")


def test_search_lists_nearest_words_without_the_query(tiny_run):
    out = subprocess.run(
        [sys.executable, "-m", "selfsup", "search", str(tiny_run), "--query", "king", "-k", "5"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = [line.split()[1] for line in out.splitlines()[1:]]
    assert len(listed) == 5 and "king" not in listed
    failed = subprocess.run(
        [sys.executable, "-m", "selfsup", "search", str(tiny_run), "--query", "zeppelin"],
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0 and "'zeppelin' is not in the vocabulary" in failed.stderr


def test_word2vec_resume_after_ctrl_c_is_exact(tmp_path, monkeypatch):
    cfg = fast_config(tmp_path, **{"train.batch_size": 12})
    # 36 sentences / 12 = 3 steps an epoch: step 5 is in the second epoch
    assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, 5)


def test_lr_decays_linearly_to_a_ten_thousandth(tiny_run):
    records = [json.loads(x) for x in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if r.get("kind") == "train"]
    peak = 0.05 * 8 / 256
    assert lrs[0] == pytest.approx(peak)
    steps = len(lrs)
    for s, lr in enumerate(lrs):
        assert lr == pytest.approx(peak * 1e-4 + (peak - peak * 1e-4) * (1 - s / steps))


@pytest.mark.slow
def test_word2vec_on_wordnet_beats_random_vectors(tmp_path):
    """Three CBOW epochs of WordNet's glosses (about 2 M words): WordSim-353 and analogy
    figures clearly above random vectors."""
    pytest.importorskip("scipy")
    cfg = selfsup.make_config(
        **{
            "method.name": "word2vec",
            "data.source": "wordnet",
            "train.epochs": 3,
            "train.progress": False,
            "train.report": False,
            "eval.protocols": "word_similarity,analogy",
        }
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    figures = result.evaluation["selfsup"]
    assert figures["wordsim353_spearman"] > figures["wordsim353_spearman_random_vectors"] + 0.2
    assert figures["analogy_accuracy"] > 0.02
    assert figures["analogy_accuracy"] > 20 * figures["analogy_random_vectors_accuracy"]
    # measured: queen 6th of the 10 best answers to man : king :: woman : ? (emperor first)
    answers = [w for w, _ in selfsup.analogy(result.run_dir, "man", "king", "woman", k=10)]
    assert "queen" in answers
