"""The metric-learning methods end to end: 1-vs-2 gloo gradients (triplet, semi-hard negatives
from the global batch), exact resume, SupCon's labels and its supervised marks, convergence."""

import json

import pytest
import torch
from method_harness import FAST, assert_resume_exact, digits_knn, run_two_processes

import selfsup
from selfsup.losses import triplet
from selfsup.methods.triplet import Triplet, TripletConfig
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
BATCH = 8
SMALL = {"method.proj_hidden_dim": 64, "method.proj_dim": 32}


def make_triplet() -> Triplet:
    torch.manual_seed(0)
    return Triplet(SPEC, TripletConfig(proj_hidden_dim=32, proj_dim=16), augment=None)


def fixed_views() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(BATCH, 3, 16, 16, generator=g), torch.rand(BATCH, 3, 16, 16, generator=g)


def half_views(rank: int):
    v1, v2 = fixed_views()
    sl = slice(rank * BATCH // 2, (rank + 1) * BATCH // 2)
    return [v1[sl], v2[sl]], {}


@pytest.mark.timeout(120)
def test_triplet_two_gloo_processes_match_one_process_gradients():
    grads = run_two_processes(make_triplet, half_views)
    method = make_triplet()
    v1, v2 = fixed_views()
    h = BATCH // 2

    def embed(v):
        halves = (slice(0, h), slice(h, None))
        parts = [method.projection_head(method.encoder(v[s])) for s in halves]
        return torch.nn.functional.normalize(torch.cat(parts), dim=1)

    # The negative mined for an anchor of rank 0 may be a sample of rank 1: only the global
    # batch gives these gradients.
    triplet(embed(v1), embed(v2), method.cfg.margin).backward()
    assert grads.keys() == dict(method.named_parameters()).keys()
    for name, p in method.named_parameters():
        assert torch.allclose(grads[name], p.grad, atol=1e-5, rtol=1e-4), name


LABELS = torch.tensor([0, 1, 0, 2, 1, 2, 0, 1])  # classes shared across the two halves


def make_supcon():
    from selfsup.methods.supcon import SupCon, SupConConfig

    torch.manual_seed(0)
    return SupCon(SPEC, SupConConfig(proj_hidden_dim=32, proj_dim=16), augment=None)


def half_views_with_labels(rank: int):
    views, _ = half_views(rank)
    sl = slice(rank * BATCH // 2, (rank + 1) * BATCH // 2)
    return views, {"label": LABELS[sl]}


@pytest.mark.timeout(120)
def test_supcon_two_gloo_processes_match_one_process_gradients():
    """SupCon's positives of a rank-0 view include same-class views of rank 1: the labels
    must be gathered with the embeddings."""
    from selfsup.losses import supcon

    grads = run_two_processes(make_supcon, half_views_with_labels)
    method = make_supcon()
    v1, v2 = fixed_views()
    h = BATCH // 2

    def embed(v):
        halves = (slice(0, h), slice(h, None))
        return torch.cat([method.projection_head(method.encoder(v[s])) for s in halves])

    z = torch.cat([embed(v1), embed(v2)])
    supcon(z, torch.cat([LABELS, LABELS]), method.cfg.temperature).backward()
    for name, p in method.named_parameters():
        assert torch.allclose(grads[name], p.grad, atol=1e-5, rtol=1e-4), name


def test_block_contrastive_resumes_exactly(tmp_path, monkeypatch):
    state = assert_resume_exact(
        tmp_path, monkeypatch, {"method.name": "block_contrastive", **SMALL}
    )
    assert int(state["draws"]) == 2 * (1437 // 128)  # the step counter that seeds the draws


def test_triplet_random_negatives_resume_exactly(tmp_path, monkeypatch):
    assert_resume_exact(
        tmp_path, monkeypatch, {"method.name": "triplet", "method.negatives": "random", **SMALL}
    )


def test_supcon_trains_with_labels_and_says_so(tmp_path, monkeypatch, capsys):
    from selfsup.methods.supcon import SupCon

    seen = []
    original = SupCon.loss

    def recording_loss(self, views, batch):
        seen.append(batch["label"].clone())
        return original(self, views, batch)

    monkeypatch.setattr(SupCon, "loss", recording_loss)
    cfg = selfsup.make_config(
        **(
            FAST
            | {"method.name": "supcon", "train.epochs": 1, "eval.protocols": "knn"}
            | {"train.report": True, **SMALL}
        )
    )
    selfsup.pretrain(cfg, tmp_path / "run")
    out = capsys.readouterr().out
    assert "SUPERVISED: method 'supcon' trains with the labels" in out
    assert "note: supervised" in out  # the evaluation table printed at the end
    # the labels of the training split reached the loss, every batch, all ten classes
    assert len(seen) == 1437 // 128
    labels = torch.cat(seen)
    assert labels.dtype == torch.long and set(labels.tolist()) == set(range(10))
    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert evaluation["note"].startswith("supervised")
    html = (tmp_path / "run" / "report.html").read_text()
    assert "SUPERVISED: trained with labels" in html
    assert "Note: supervised" in html


def test_self_supervised_runs_carry_no_supervised_mark(tmp_path, capsys):
    cfg = selfsup.make_config(
        **(FAST | {"method.name": "npair", "train.epochs": 1, "train.report": True, **SMALL})
    )
    selfsup.pretrain(cfg, tmp_path / "run")
    assert "SUPERVISED" not in capsys.readouterr().out
    assert "SUPERVISED" not in (tmp_path / "run" / "report.html").read_text()


def test_triplet_defaults_to_semi_hard_negatives():
    """FaceNet sec. 3.2: semi-hard negatives by default; the hardest ones stay an option."""
    assert TripletConfig().negatives == "semi-hard"
    assert Triplet.make_config({"negatives": "hardest"}).negatives == "hardest"


def test_bad_parameters_are_named():
    with pytest.raises(selfsup.SelfsupError, match="hardest"):
        selfsup.pretrain(
            selfsup.make_config(**{"method.name": "triplet", "method.negatives": "semi"})
        )


# Settings of the digits convergence runs (20 epochs, batch 128): see docs/methods-metric.md.
CONVERGENCE = {
    "contrastive_margin": {},
    "triplet": {},
    "npair": {},
    "supcon": {},
    "block_contrastive": {},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONVERGENCE))
def test_converges_on_digits(tmp_path, name):
    learned, random = digits_knn(
        tmp_path, {"method.name": name, **SMALL, **CONVERGENCE[name]}, epochs=20
    )
    print(f"{name}: kNN learned {learned:.4f} random {random:.4f}")
    assert learned > random + 0.05
