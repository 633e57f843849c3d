"""A method's pictures (`Method.figures`) reach figures/ and the report; its logged figures
(a pretext task's accuracy) get a curve each."""

import numpy as np
import torch

import selfsup
from selfsup.methods.simclr import SimCLR


def test_method_figures_are_saved_and_shown(tmp_path, monkeypatch):
    def figures(self, batch):
        images = batch["image"]
        assert images.shape[0] <= 16 and images.dtype == torch.uint8
        return {"Inputs: first held-out images": np.full((8, 16, 3), 200, np.uint8)}

    def loss(self, views, batch):
        value, extras = original(self, views, batch)
        return value, extras | {"pretext_accuracy": torch.tensor(0.5)}

    original = SimCLR.loss
    monkeypatch.setattr(SimCLR, "figures", figures)
    monkeypatch.setattr(SimCLR, "loss", loss)
    cfg = selfsup.make_config(
        **{
            "train.epochs": 1,
            "train.progress": False,
            "train.eval_every": 0,
            "eval.protocols": "geometry",
            "method.proj_hidden_dim": 32,
            "method.proj_dim": 16,
        }
    )
    selfsup.pretrain(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "figures" / "inputs-first-held-out-images.png").is_file()
    page = (tmp_path / "run" / "report.html").read_text()
    assert "What the method learned" in page and "inputs first held out images" in page
    from selfsup.metrics import read_metrics
    from selfsup.report import Panel, curve_panels

    panels = curve_panels(read_metrics(tmp_path / "run" / "metrics.jsonl"))
    assert Panel("train", ("pretext_accuracy",), "pretext accuracy (%)") in panels
