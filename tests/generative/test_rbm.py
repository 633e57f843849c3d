"""RBM: free energy, the CD gradient and pseudo-likelihood against plain references (and
scikit-learn's), exact resume with the persistent chains, bad input, pictures, convergence."""

import itertools
import json

import numpy as np
import pytest
import torch
from method_harness import FAST, assert_resume_exact

import selfsup
from selfsup.errors import SelfsupError
from selfsup.losses import cd_surrogate, rbm_free_energy, rbm_pseudo_loglik
from selfsup.methods import get_method
from selfsup.models import ImageEncoderSpec


def _tiny(d=5, h=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(h, d, generator=g, dtype=torch.float64)
    b = torch.randn(d, generator=g, dtype=torch.float64)
    c = torch.randn(h, generator=g, dtype=torch.float64)
    v = (torch.rand(7, d, generator=g) > 0.5).double()
    return v, w, b, c


def test_free_energy_is_minus_log_sum_over_hidden_states():
    v, w, b, c = _tiny()
    want = []
    for row in v:
        energies = [
            -(row @ b)
            - (torch.tensor(h, dtype=torch.float64) @ c)
            - torch.tensor(h, dtype=torch.float64) @ w @ row
            for h in itertools.product([0, 1], repeat=len(c))
        ]
        want.append(-torch.logsumexp(-torch.stack(energies), 0))
    assert torch.allclose(rbm_free_energy(v, w, b, c), torch.stack(want))


def test_cd_gradient_is_positive_minus_negative_statistics():
    v_pos, w, b, c = _tiny()
    v_neg = torch.rand(4, v_pos.shape[1], generator=torch.Generator().manual_seed(1)) > 0.5
    v_neg = v_neg.double()
    params = [p.clone().requires_grad_() for p in (w, b, c)]
    cd_surrogate(v_pos, v_neg, *params).backward()
    h_pos, h_neg = torch.sigmoid(v_pos @ w.t() + c), torch.sigmoid(v_neg @ w.t() + c)
    # the textbook update (scikit-learn's _fit): <h v^T>_data - <h v^T>_model, descent = -grad
    want_w = h_pos.t() @ v_pos / len(v_pos) - h_neg.t() @ v_neg / len(v_neg)
    want_b = v_pos.mean(0) - v_neg.mean(0)
    want_c = h_pos.mean(0) - h_neg.mean(0)
    for got, want in zip(params, (want_w, want_b, want_c), strict=True):
        assert torch.allclose(-got.grad, want)
    # the negative samples are constants: no gradient reaches them through the surrogate
    v_neg.requires_grad_()
    cd_surrogate(v_pos, v_neg, w, b, c)
    assert v_neg.grad is None


def test_pseudo_likelihood_exact_and_one_bit_match_plain_loops_and_sklearn():
    from sklearn.neural_network import BernoulliRBM

    v, w, b, c = _tiny(d=6, h=4)
    f = rbm_free_energy(v, w, b, c)
    want = torch.zeros(len(v), dtype=torch.float64)
    for d in range(v.shape[1]):
        flipped = v.clone()
        flipped[:, d] = 1 - flipped[:, d]
        want += torch.nn.functional.logsigmoid(rbm_free_energy(flipped, w, b, c) - f)
    assert torch.allclose(rbm_pseudo_loglik(v, w, b, c), want)
    # scikit-learn's score_samples flips one bit per row, drawn by its random_state
    sk = BernoulliRBM(n_components=4, random_state=3)
    sk.components_, sk.intercept_visible_, sk.intercept_hidden_ = (w.numpy(), b.numpy(), c.numpy())
    sk.n_features_in_ = v.shape[1]
    bits = torch.from_numpy(np.random.RandomState(3).randint(0, v.shape[1], len(v)))
    ours = rbm_pseudo_loglik(v, w, b, c, bits=bits)
    assert np.allclose(ours.numpy(), sk.score_samples(v.numpy()))


def _method(channels=1, **params):
    spec = ImageEncoderSpec("convnet", channels, 8, True, (0.3,) * channels, (0.4,) * channels)
    cls = get_method("rbm")
    return cls(spec, cls.make_config(params), None)


def test_step_takes_binarised_pixels_and_keeps_chains():
    torch.manual_seed(0)
    method = _method(hidden=16, chains=6, k=2)
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    v = method.encoder.visible(images)
    assert torch.equal(v, (images > 127).flatten(1).float())
    assert torch.equal(method.encoder(images), method.encoder(images.float() / 255))
    loss, extras = method.loss(method.views({"image": images}), {"image": images})
    loss.backward()
    assert method.encoder.weight.grad is not None and "reconstruction_error" in extras
    assert method.chains.shape == (6, 16) and set(method.chains.unique().tolist()) <= {0.0, 1.0}
    assert method.chains.any()  # the chains moved from their zero start


def test_colour_images_are_refused_with_one_clear_error():
    with pytest.raises(SelfsupError, match="grey images; this data has 3 channels"):
        _method(channels=3)


def test_pictures_are_samples_and_filters():
    torch.manual_seed(0)
    method = _method(hidden=16)
    with torch.no_grad():
        pictures = method.figures({"image": torch.zeros(4, 1, 8, 8, dtype=torch.uint8)})
    assert len(pictures) == 2
    for grid in pictures.values():
        assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
    state = torch.random.get_rng_state()
    with torch.no_grad():
        method.figures({"image": torch.zeros(4, 1, 8, 8, dtype=torch.uint8)})
    assert torch.equal(state, torch.random.get_rng_state())  # the run's draws are untouched


def test_resume_is_exact_with_the_persistent_chains(tmp_path, monkeypatch):
    small = {"method.name": "rbm", "method.hidden": 32, "method.chains": 16, "optim.lr": 0.5}
    state = assert_resume_exact(tmp_path, monkeypatch, small)
    assert state["chains"].shape == (16, 32) and state["chains"].any()


def test_run_reports_heldout_pseudo_likelihood_and_loads(tmp_path):
    cfg = selfsup.make_config(
        **(FAST | {"method.name": "rbm", "method.hidden": 32, "eval.protocols": "knn"})
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "eval.json").read_text())
    learned, random = saved["selfsup"]["pseudo_nll_nats"], saved["random"]["pseudo_nll_nats"]
    assert 0 < learned < random  # the random RBM is near 64 * log 2 = 44.4 nats
    assert "pseudo_nll_nats" not in saved["raw_pixels"]
    encoder = selfsup.load(tmp_path / "run")
    assert encoder.kind == "rbm"
    images = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    assert selfsup.embed(encoder, images).shape == (3, 32)  # RGB is turned grey, as any encoder
    assert result.evaluation["selfsup"]["pseudo_nll_nats"] == learned


# Measured (docs/methods-generative.md): sklearn's setting (batch 10, 0.1, PCD-1 with 10 chains)
# for 20 epochs on digits.
CONVERGE = {
    "method.name": "rbm",
    "method.chains": 10,
    "train.batch_size": 10,
    "train.epochs": 20,
    "eval.protocols": "knn",
}


@pytest.mark.slow
def test_features_beat_the_random_rbm_and_pseudo_likelihood_improves(tmp_path):
    cfg = selfsup.make_config(**(FAST | CONVERGE))
    result = selfsup.pretrain(cfg, tmp_path / "run").evaluation
    learned, random = result["selfsup"], result["random"]
    print(learned, random)
    assert learned["knn_top1"] > random["knn_top1"] + 0.02
    assert learned["pseudo_nll_nats"] < 0.6 * random["pseudo_nll_nats"]
