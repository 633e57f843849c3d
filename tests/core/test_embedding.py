import pytest
import torch
from torch import nn

from selfsup.embedding import encode_rows
from selfsup.errors import SelfsupError


class TinyEncoder(nn.Module):
    """Conv + BatchNorm + Dropout: its output depends on train/eval mode."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.5)
        self.modes_seen = []

    def forward(self, x):
        self.modes_seen.append(self.training)
        return self.drop(self.bn(self.conv(x)).relu().mean(dim=(2, 3)))


@pytest.fixture
def images():
    return torch.randint(0, 256, (23, 3, 8, 8), dtype=torch.uint8)


def unit(batch):
    return batch["image"].float() / 255


def embed(encoder, images, to_input=unit, **kwargs):
    return encode_rows(encoder, {"image": images}, to_input, **kwargs)


def test_matches_direct_forward_in_eval_mode(images):
    encoder = TinyEncoder()
    feats = embed(encoder, images, batch_size=5)
    assert feats.dtype == torch.float32 and feats.device.type == "cpu" and feats.shape == (23, 8)
    assert encoder.modes_seen == [False] * 5
    encoder.eval()
    with torch.no_grad():
        expected = encoder(images.float() / 255)
    torch.testing.assert_close(feats, expected)


def test_restores_each_modules_mode(images):
    encoder = TinyEncoder().train()
    encoder.bn.eval()  # a frozen BatchNorm inside a training model
    embed(encoder, images)
    assert encoder.training and encoder.conv.training and encoder.drop.training
    assert not encoder.bn.training
    encoder.eval()
    embed(encoder, images)
    assert not encoder.training


def test_restores_mode_when_forward_fails(images):
    encoder = TinyEncoder().train()
    with pytest.raises(RuntimeError):
        embed(encoder, images, lambda b: b["image"].float()[:, :1])
    assert encoder.training and encoder.bn.training


def test_features_can_join_a_later_backward(images):
    encoder = TinyEncoder()
    feats = embed(encoder, images)
    loss = (encoder(images.float() / 255) * feats).sum()
    loss.backward()  # would fail on inference-mode tensors
    assert encoder.conv.weight.grad is not None


def test_no_samples_gives_a_clear_error(images):
    with pytest.raises(SelfsupError, match="no samples"):
        embed(TinyEncoder(), images[:0])
