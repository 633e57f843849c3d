"""A method may own several optimisers (`Method.updates`): the loop steps each on its own loss,
in the order of the method's `plan`, and a resume restores every optimiser's state exactly."""

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from method_harness import FAST, assert_resume_exact
from torch import nn

import selfsup
from selfsup.methods.base import Method
from selfsup.methods.registry import METHODS

SEEN: list[tuple[str, float]] = []  # (update, the critic's first weight when its loss was made)


@dataclass
class CriticConfig:
    late_start: float = 0.0  # progress before which only the critic steps


class Critic(Method):
    """A toy adversarial pair: a linear critic scores the encoder's features of the image (high)
    against noise features (low); the encoder makes the two indistinguishable."""

    name = "toy_critic"
    family = "generative"
    paper = "test"
    summary = "two optimisers"
    Config = CriticConfig
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    updates: ClassVar[tuple[str, ...]] = ("critic", "encoder")
    find_unused_parameters = True
    optimiser: ClassVar[dict] = {"name": "adamw", "lr": 1e-3, "weight_decay": 0.0}

    def __init__(self, spec, cfg, augment):
        super().__init__(spec, cfg, augment)
        self.critic = nn.Linear(self.encoder.out_dim, 1)

    def views(self, batch):
        return [batch["image"].float() / 255]

    def update_groups(self, update):
        net = self.critic if update == "critic" else self.encoder
        return [{"params": list(net.parameters()), "lr_scale": 2.0 if update == "critic" else 1.0}]

    def update_loss(self, update, views, batch):
        SEEN.append((update, float(self.critic.weight[0, 0].detach())))
        real = self.encoder(views[0])
        fake = torch.randn_like(real)
        if update == "critic":
            loss = nn.functional.softplus(-self.critic(real.detach())).mean()
            loss = loss + nn.functional.softplus(self.critic(fake)).mean()
            return loss, {}
        return nn.functional.softplus(-self.critic(real)).mean() * -1.0, {"real_score": real.std()}

    def plan(self, progress):
        return ("critic",) if progress < self.cfg.late_start else self.updates


@pytest.fixture
def critic_method():
    METHODS[Critic.name] = Critic
    SEEN.clear()
    yield Critic.name
    del METHODS[Critic.name]


def test_each_optimiser_steps_its_own_network_in_plan_order(tmp_path, critic_method):
    cfg = selfsup.make_config(**(FAST | {"method.name": critic_method, "train.epochs": 1}))
    selfsup.pretrain(cfg, tmp_path / "run")
    steps = len(SEEN) // 2
    assert [u for u, _ in SEEN] == ["critic", "encoder"] * steps
    # the encoder's loss is made after the critic stepped: it sees the critic's new weight
    # (after the first step, whose warm-up lr is 0)
    for (_, before), (_, seen) in zip(SEEN[2::2], SEEN[3::2], strict=True):
        assert seen != before
    records = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert {"loss_critic", "loss_encoder", "real_score"} <= set(train[0])
    assert train[0]["loss"] == pytest.approx(train[0]["loss_critic"] + train[0]["loss_encoder"])
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert set(ckpt["optimizers"]) == {"critic", "encoder"}
    groups = {k: o["param_groups"][0]["lr"] for k, o in ckpt["optimizers"].items()}
    assert groups["critic"] == pytest.approx(2 * groups["encoder"])


def test_the_plan_can_leave_an_optimiser_out(tmp_path, critic_method):
    cfg = selfsup.make_config(
        **(FAST | {"method.name": critic_method, "method.late_start": 0.5, "train.epochs": 2})
    )
    selfsup.pretrain(cfg, tmp_path / "run")
    updates = [u for u, _ in SEEN]
    per_epoch = 1437 // 128
    assert updates[:per_epoch] == ["critic"] * per_epoch  # the first half: the critic alone
    assert updates[per_epoch:] == ["critic", "encoder"] * per_epoch


def test_resume_restores_every_optimiser(tmp_path, monkeypatch, critic_method):
    state = assert_resume_exact(tmp_path, monkeypatch, {"method.name": critic_method})
    assert "critic.weight" in state


def test_a_checkpoint_with_one_optimizer_still_resumes(tmp_path):
    """Checkpoints written before methods could own several optimisers say "optimizer"."""
    cfg = selfsup.make_config(**FAST)
    selfsup.pretrain(cfg, tmp_path / "run")
    path = tmp_path / "run" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=False)
    ckpt["optimizer"] = ckpt.pop("optimizers")["main"]
    torch.save(ckpt, path)
    selfsup.pretrain(out=tmp_path / "run", resume=True, train__epochs=3)
    after = torch.load(path, weights_only=False)
    assert after["progress"]["epoch"] == 3 and set(after["optimizers"]) == {"main"}
