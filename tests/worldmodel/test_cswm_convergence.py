"""C-SWM learns the 2-D shapes world: after 20 epochs on 100 generated episodes (10,000
transitions; the paper trains 100 epochs on 1,000), ranked among 200 held-out episodes its
1-step predictions find their target far above the random world model, and its 10-step ones
beat the raw pixels standing still. About 80 s of CPU on one thread (docs/world-models.md)."""

import json

import pytest
from method_harness import FAST, torch_threads

import selfsup


@pytest.mark.slow
def test_cswm_predicts_shapes_far_above_the_random_model_and_raw_pixels(tmp_path):
    cfg = selfsup.make_config(
        **(
            FAST
            | {
                "method.name": "cswm",
                "data.source": "shapes-2d:100,200",
                "method.hidden_dim": 128,
                "train.epochs": 20,
                "train.batch_size": 256,
                "optim.lr": 5e-4,
                "eval.protocols": "transition_ranking",
            }
        )
    )
    with torch_threads(1):
        selfsup.pretrain(cfg, tmp_path / "run")
    results = json.loads((tmp_path / "run" / "eval.json").read_text())
    learned, random, raw = results["selfsup"], results["random"], results["raw_pixels"]
    # measured: learned 100 / 93.5 / 70.0 % H@1 at 1 / 5 / 10 steps; random 1.0 / 0.5 / 0.5 %;
    # raw pixels 100 / 54.0 / 26.0 %
    assert learned["transition_step1_hit@1"] >= 0.95
    assert learned["transition_step1_hit@1"] >= random["transition_step1_hit@1"] + 0.8
    assert learned["transition_step10_hit@1"] >= random["transition_step10_hit@1"] + 0.4
    assert learned["transition_step10_hit@1"] >= raw["transition_step10_hit@1"] + 0.2
    assert learned["transition_step10_mrr"] > raw["transition_step10_mrr"]
