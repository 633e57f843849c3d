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


def test_figures_at_each_evaluation_and_heldout_figures(tmp_path, monkeypatch):
    """With `train.eval_every` the pictures are saved per step too, and the report shows them
    in order; `heldout_figures` are averaged over every held-out sample, logged on the curve,
    written to method_figures.json and shown."""
    seen = []

    def figures(self, batch):
        return {"Samples": np.full((8, 8, 3), 100, np.uint8)}

    def heldout_figures(self, batch):
        seen.append(len(batch["image"]))
        return {"mean_pixel": batch["image"].float().mean(dim=(1, 2, 3))}

    monkeypatch.setattr(SimCLR, "figures", figures)
    monkeypatch.setattr(SimCLR, "heldout_figures", heldout_figures)
    cfg = selfsup.make_config(
        **{
            "train.epochs": 2,
            "train.progress": False,
            "train.eval_every": 1,
            "eval.protocols": "knn",
            "method.proj_hidden_dim": 32,
            "method.proj_dim": 16,
        }
    )
    run = tmp_path / "run"
    selfsup.pretrain(cfg, run)
    steps = sorted(p.name for p in (run / "figures" / "steps").iterdir())
    assert steps == ["samples-step0000005.png"]  # the periodic evaluation after epoch 1
    assert (run / "figures" / "samples.png").is_file()  # the end of training
    import json

    own = json.loads((run / "method_figures.json").read_text())
    queries = sum(seen) // 2  # once at the periodic evaluation, once at the end
    assert sum(seen) == 2 * queries and queries == 360
    assert 0 < own["figures"]["mean_pixel"] < 255 and own["step"] == 10
    from selfsup.metrics import read_metrics

    evals = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [5, 10] and all("mean_pixel" in r for r in evals)
    assert evals[-1]["mean_pixel"] == own["figures"]["mean_pixel"]
    page = (run / "report.html").read_text()
    assert "samples, over training" in page and "step 5" in page and "mean_pixel" in page
