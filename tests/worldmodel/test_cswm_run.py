"""C-SWM end to end on a few generated 2-D shapes episodes: the run, its evaluation beside the
random model and the raw pixels, the object-slot pictures, loading, exact resume."""

import json

import torch
from method_harness import FAST, assert_config_resumes_exactly

import selfsup
from selfsup.cli import main
from selfsup.models.cswm import CswmEncoder

TINY = FAST | {
    "method.name": "cswm",
    "data.source": "shapes-2d:3,12",
    "method.hidden_dim": 32,
    "train.batch_size": 64,
}


def test_tiny_run_evaluates_learned_random_and_raw_rows_and_draws_object_slots(tmp_path):
    cfg = selfsup.make_config(
        **(TINY | {"eval.protocols": "transition_ranking", "train.report": True})
    )
    selfsup.pretrain(cfg, tmp_path / "run")
    run = tmp_path / "run"
    results = json.loads((run / "eval.json").read_text())
    assert "12 held-out episodes" in results["queries"]
    for row in ("selfsup", "random", "raw_pixels"):
        figures = results[row]
        for k in (1, 5, 10):
            assert 0 <= figures[f"transition_step{k}_hit@1"] <= 1, row
            assert 1 / 12 <= figures[f"transition_step{k}_mrr"] <= 1, row
    # the raw row is the identity transition in pixel space: after one push the start frame
    # differs from its target by one object, from any other episode's target by several
    assert results["raw_pixels"]["transition_step1_hit@1"] == 1.0
    pictures = list((run / "figures").glob("cswm-*.png"))
    assert len(pictures) == 1
    from PIL import Image

    width, height = Image.open(pictures[0]).size
    assert (width, height) == (6 * 52, 8 * 52)  # observation + 5 slots, 8 observations
    page = (run / "report.html").read_text()
    assert 'alt="cswm observation object slots 1 5 activation maps"' in page
    assert "transition_step10_hit@1" in page
    model = selfsup.load(run)
    assert isinstance(model, CswmEncoder) and model.out_dim == 10
    obs = torch.randint(0, 256, (4, 3, 50, 50), dtype=torch.uint8)
    state = model(obs)
    rolled = model.predict(state, torch.tensor([[0, 5], [19, 2], [3, 3], [7, 8]]))
    assert state.shape == rolled.shape == (4, 10)


def test_resume_is_exact(tmp_path, monkeypatch):
    cfg = selfsup.make_config(**(TINY | {"data.source": "shapes-2d:3,2", "eval.protocols": ""}))
    assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, interrupt_call=6)  # 4 steps/epoch


def test_methods_and_datasets_list_it(capsys):
    assert main(["methods"]) == 0
    assert "cswm" in capsys.readouterr().out
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "shapes-2d" in out and "transitions" in out
