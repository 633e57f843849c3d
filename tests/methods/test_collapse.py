"""The collapse monitor sees BYOL and SimSiam collapse without their predictor.

train.py logs `proj_std` (mean per-dimension std of the L2-normalised embedding the method
watches; 1/sqrt(d) = `proj_std_reference` when spread out, 0 when collapsed) and
`proj_effective_rank` (RankMe) on every logged step. Without the predictor, BYOL's projections
fall towards one point (proj_std far below the reference); SimSiam's projector ends in
BatchNorm without affine parameters, which keeps each dimension's spread, so its collapse shows
as the effective rank falling (all dimensions moving together); on 8 epochs of digits it falls
to about 0.6 of the rank with the predictor, not yet to 1. The same method with the predictor
keeps both up.
"""

import json

import pytest
from method_harness import FAST

import selfsup

HEADS = {"method.proj_hidden_dim": 128, "method.proj_dim": 64, "method.pred_hidden_dim": 64}
SGD = {"optim.name": "sgd", "optim.lr": 0.05, "optim.weight_decay": 5e-4}
EPOCHS = 8


def final_monitor(tmp_path, name: str, predictor: bool, extra: dict) -> dict:
    overrides = {"method.name": name, "method.predictor": predictor, "train.epochs": EPOCHS}
    cfg = selfsup.make_config(**(FAST | HEADS | extra | overrides))
    out = tmp_path / f"{name}-{predictor}"
    selfsup.pretrain(cfg, out)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if r["kind"] == "train"][-1]
    print(
        name,
        "predictor" if predictor else "no predictor",
        {k: last[k] for k in last if "proj" in k},
    )
    return last


@pytest.mark.slow
def test_byol_without_predictor_collapses_and_the_monitor_reports_it(tmp_path):
    without = final_monitor(tmp_path, "byol", False, {})
    with_ = final_monitor(tmp_path, "byol", True, {})
    reference = without["proj_std_reference"]
    assert without["proj_std"] < 0.5 * reference
    assert with_["proj_std"] > 0.75 * reference
    assert without["proj_effective_rank"] < 0.75 * with_["proj_effective_rank"]


@pytest.mark.slow
def test_simsiam_without_predictor_collapses_and_the_monitor_reports_it(tmp_path):
    without = final_monitor(tmp_path, "simsiam", False, SGD)
    with_ = final_monitor(tmp_path, "simsiam", True, SGD)
    # Measured: rank 17.6 without against 30.5 with the predictor (of 64). SimSiam collapses
    # more slowly than BYOL here: at this budget the rank has fallen by 40 %, not to 1.
    assert without["proj_effective_rank"] < 0.7 * with_["proj_effective_rank"]
    assert with_["proj_std"] > 0.75 * with_["proj_std_reference"]
