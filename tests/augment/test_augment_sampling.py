"""Sampled parameters follow the intended distributions; enough draws that a wrong p fails."""

import math

import torch
import torchvision.transforms.v2 as T

from selfsup.augment import ops
from selfsup.augment.sampling import (
    jitter_ranges,
    sample_crop_boxes,
    sample_flags,
    sample_jitter,
    uniform,
)

N = 20_000  # binomial standard error at p = 0.5: 0.0035


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_crop_boxes_inside_image_and_integer():
    boxes = sample_crop_boxes(N, 24, 40, (0.08, 1.0), (3 / 4, 4 / 3), "cpu", gen())
    top, left, h, w = boxes.unbind(1)
    assert torch.equal(boxes, boxes.round())
    assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (top + h <= 24).all() and (left + w <= 40).all()


def test_crop_area_and_ratio_uniform_when_every_try_fits():
    """On 100 x 100 with scale <= 0.6 every draw fits: area fraction ~ U(0.2, 0.6), log ratio
    ~ U(log 3/4, log 4/3), up to the rounding of sides to pixels."""
    boxes = sample_crop_boxes(N, 100, 100, (0.2, 0.6), (3 / 4, 4 / 3), "cpu", gen())
    area = boxes[:, 2] * boxes[:, 3] / 1e4
    log_ratio = (boxes[:, 3] / boxes[:, 2]).log()
    assert area.min() > 0.19 and area.max() < 0.61
    assert abs(area.mean().item() - 0.4) < 0.005  # std error 0.0008
    assert abs(((area > 0.4).float().mean().item()) - 0.5) < 0.02
    assert log_ratio.abs().max() < math.log(4 / 3) + 0.03
    assert abs(log_ratio.mean().item()) < 0.005
    assert abs(log_ratio.std().item() - 2 * math.log(4 / 3) / math.sqrt(12)) < 0.01


def test_crop_position_uniform():
    boxes = sample_crop_boxes(N, 64, 64, (0.25, 0.25), (1.0, 1.0), "cpu", gen())
    assert (boxes[:, 2:] == 32).all()
    top = boxes[:, 0]
    assert top.min() == 0 and top.max() == 32
    assert abs(top.mean().item() - 16) < 0.3  # std error 0.07


def test_crop_matches_torchvision_on_cifar_size():
    """Including rejections of boxes that do not fit, area and ratio moments match torchvision."""
    n = 4000
    ours = sample_crop_boxes(n, 32, 32, (0.08, 1.0), (3 / 4, 4 / 3), "cpu", gen())
    rrc = T.RandomResizedCrop(32)
    image = torch.zeros(3, 32, 32)
    torch.manual_seed(0)
    params = [rrc.make_params([image]) for _ in range(n)]
    theirs = torch.tensor([[p["top"], p["left"], p["height"], p["width"]] for p in params])
    for boxes in (ours, theirs):
        assert boxes.shape == (n, 4)
    area = [(b[:, 2] * b[:, 3]).float().mean().item() / 1024 for b in (ours, theirs)]
    assert abs(area[0] - area[1]) < 0.025  # std error of the difference 0.006
    ratio = [(b[:, 3].float() / b[:, 2]).log().mean().item() for b in (ours, theirs)]
    assert abs(ratio[0] - ratio[1]) < 0.015


def test_crop_falls_back_to_central_crop():
    boxes = sample_crop_boxes(100, 32, 32, (2.0, 3.0), (2.0, 3.0), "cpu", gen())
    assert (boxes == torch.tensor([8.0, 0.0, 16.0, 32.0])).all()


def test_flag_rate():
    for p in (0.0, 0.2, 0.5, 0.8, 1.0):
        rate = sample_flags(N, p, "cpu", gen()).float().mean().item()
        assert abs(rate - p) < 0.015, (p, rate)


def test_uniform_range():
    sigma = uniform((N,), 0.1, 2.0, "cpu", gen())
    assert sigma.min() >= 0.1 and sigma.max() < 2.0
    assert abs(sigma.mean().item() - 1.05) < 0.02


def test_jitter_factors_rate_and_order():
    ranges = jitter_ranges(0.4, 0.4, 0.4, 0.1)
    assert ranges == [(0.6, 1.4), (0.6, 1.4), (0.6, 1.4), (-0.1, 0.1)]
    assert jitter_ranges(1.5, 0, 0, 0)[0] == (0.0, 2.5)
    factors, order = sample_jitter(N, ranges, 0.8, "cpu", gen())
    identity = torch.tensor([1.0, 1.0, 1.0, 0.0])
    picked = ~(factors == identity).all(dim=1)
    assert abs(picked.float().mean().item() - 0.8) < 0.015
    for column, (low, high) in enumerate(ranges):
        values = factors[picked, column]
        assert values.min() >= low and values.max() <= high
        assert abs(values.mean().item() - (low + high) / 2) < 0.01
    assert torch.equal(order.sort(dim=1).values, torch.arange(4).expand(N, 4))
    first_op_rate = torch.bincount(order[:, 0], minlength=4).float() / N
    assert (first_op_rate - 0.25).abs().max() < 0.02
    assert ops.HUE == 3  # column order the ranges above assume
