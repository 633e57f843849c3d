"""Batched image ops: float (B, C, H, W) in [0, 1] in, same out, one parameter per sample.

Each op equals its torchvision.transforms.v2.functional counterpart for the same parameters
(tests/augment check it), but takes per-sample parameter tensors so that a whole batch is
augmented with no Python loop over samples. Sampling the parameters lives in `sampling.py`.

Own tensor code rather than kornia or torchvision per sample: several times faster (docs/
benchmarks.md, "Batched augmentation"), and equal to torchvision to float rounding.

Off the CPU no op reads a value back to the host (no .nonzero(), .item() or data-dependent
shapes): which samples an op applies to is a 0/1 mask applied by torch.where or lerp, so that
on CUDA a whole view is queued without one host-device synchronisation (tests run the pipeline
on the 'meta' device, which refuses such reads). On the CPU, where reading back costs nothing,
ops that touch a random subset (hue within color_jitter, solarize, and the pipeline's blur)
still compute just that subset: their masked forms were measurably slower there.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# ITU-R 601-2 luma weights, as torchvision's rgb_to_grayscale uses them.
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)

# Colour-jitter op codes, the column order of the `factors` tensor of `color_jitter`.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3

# Offsets n of the closed-form HSV -> RGB map: channel = v - chroma * clamp(min(k, 4 - k), 0, 1)
# with k = (n + 6 * hue) mod 6, for R, G, B.
_HSV_OFFSETS = (5.0, 3.0, 1.0)
# adjust_hue on CPU works through the batch in chunks of this many pixels per plane (at least
# 4 samples, to amortise ~30 op calls): its ~10 temporaries then stay in cache. Best of 15 on
# 2 threads: 256 x 32 px 7.5 ms (11 ms unchunked); 64 x 224 px 36-54 ms (91 ms unchunked).
HUE_CHUNK_PIXELS = 1 << 16
HUE_CHUNK_MIN_SAMPLES = 4


def _use_masks(x: Tensor) -> bool:
    """Whether ops on a random subset of x's samples compute all and select by mask (off the
    CPU: gathering the subset needs its size on the host, a synchronisation) rather than
    gather, compute and scatter back the subset (on the CPU: fewer samples to compute)."""
    return x.device.type != "cpu"


def apply_picked(picked: Tensor, x: Tensor, op: Callable[..., Tensor], *params: Tensor) -> Tensor:
    """op(x, *params) for the samples where picked (B,) is True, the others as they are.

    op must work sample by sample, and params are per-sample tensors (B, ...).
    """
    if _use_masks(x):
        return torch.where(_mask(picked, x), op(x, *params), x)
    index = picked.to(x.device).nonzero().squeeze(1)
    if index.numel() == 0:
        return x
    return x.index_copy(0, index, op(x[index], *(p[index] for p in params)))


def _column(values: Tensor, like: Tensor) -> Tensor:
    """Per-sample values (B,) shaped (B, 1, 1, 1) to broadcast over a batch of images."""
    return values.to(device=like.device, dtype=like.dtype).view(-1, 1, 1, 1)


def to_float(x: Tensor) -> Tensor:
    """uint8 images -> float32 in [0, 1]; float input is returned as float32 unchanged."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32).mul_(1.0 / 255.0)
    return x.to(torch.float32)


def resized_crop(x: Tensor, boxes: Tensor, size: int, flip: Tensor | None = None) -> Tensor:
    """Crop each sample to its box and resize it to size x size (bilinear), in one grid_sample.

    boxes: (B, 4) pixels (top, left, height, width). Sample points are clamped to the box's
    pixel centres, so the result equals torchvision's crop-then-resize (antialias=False) rather
    than reading pixels outside the box. flip (B,) bool mirrors a crop horizontally at no cost.
    The grid is built from its separable rows and columns: affine_grid's batched matmul was
    the slowest part of this op on CPU.
    """
    b, _, height, width = x.shape
    top, left, h, w = boxes.to(device=x.device, dtype=x.dtype).unbind(1)
    # Output pixel centres in [-1, 1] (align_corners=False), then per-sample scale and shift.
    steps = torch.arange(size, device=x.device, dtype=x.dtype).mul_(2.0 / size).add_(1.0 / size - 1)
    col_steps = steps.expand(b, size)
    if flip is not None:
        col_steps = torch.where(flip.to(x.device)[:, None], -steps, steps)
    cols = _box_coordinates(col_steps, left, w, width)
    rows = _box_coordinates(steps, top, h, height)
    grid = torch.stack(
        (cols[:, None, :].expand(b, size, size), rows[:, :, None].expand(b, size, size)), dim=-1
    )
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _box_coordinates(steps: Tensor, start: Tensor, length: Tensor, extent: int) -> Tensor:
    """Normalised sample positions (B, S) of an output axis inside [start, start + length) of an
    input axis of `extent` pixels, clamped to the first and last pixel centres of that span."""
    start, length = start[:, None], length[:, None]
    coords = steps * (length / extent) + ((2 * start + length) / extent - 1)
    low = (2 * start + 1) / extent - 1
    high = (2 * (start + length) - 1) / extent - 1
    return torch.maximum(torch.minimum(coords, high), low)


def resize(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Resize every image to size x size or (height, width) = size (bilinear, antialiased like
    torchvision v2's resize, with no aspect-preserving crop)."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if x.shape[-2:] == hw:
        return x
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=True)


def grayscale(x: Tensor) -> Tensor:
    """Luma of RGB images, (B, 1, H, W), with torchvision's rgb_to_grayscale weights."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return r.mul(GRAY_WEIGHTS[0]).add_(g, alpha=GRAY_WEIGHTS[1]).add_(b, alpha=GRAY_WEIGHTS[2])


def random_grayscale(x: Tensor, apply: Tensor) -> Tensor:
    """Replace the RGB samples where apply (B,) is True by their luma in all 3 channels."""
    if x.shape[1] == 1:
        return x
    # A lerp with 0/1 weights is exact, and on CPU faster than gathering the picked samples.
    return x.lerp(grayscale(x), _mask(apply, x).to(x.dtype))


def _mask(flags: Tensor, like: Tensor) -> Tensor:
    """Per-sample bools (B,) shaped (B, 1, 1, 1) on like's device, for torch.where."""
    return flags.to(like.device).view(-1, 1, 1, 1)


def adjust_hue(x: Tensor, factor: Tensor) -> Tensor:
    """Rotate hue by a per-sample fraction of a turn (B,) in [-0.5, 0.5] via HSV; 1 channel as is.

    A hue shift keeps HSV's value (max) and chroma (max - min), so RGB -> HSV reduces to the hue
    and HSV -> RGB to the closed form v - chroma * clamp(min(k, 4 - k), 0, 1) per channel. Written
    as in-place float arithmetic on few buffers (torch.where, bool masks, remainder, stack and
    gather are each several times slower on CPU), in cache-sized chunks on CPU; equal to
    torchvision's round trip to ~1e-6.
    """
    if x.shape[1] == 1:
        return x
    out = torch.empty_like(x)
    chunk = len(x)
    if x.device.type == "cpu":  # see HUE_CHUNK_PIXELS
        chunk = max(HUE_CHUNK_MIN_SAMPLES, HUE_CHUNK_PIXELS // (x.shape[2] * x.shape[3]))
    parts = zip(x.split(chunk), factor.split(chunk), out.split(chunk), strict=True)
    for part, part_factor, part_out in parts:
        _adjust_hue_into(part, part_factor, part_out)
    return out


def _adjust_hue_into(x: Tensor, factor: Tensor, out: Tensor) -> None:
    """adjust_hue of one chunk of RGB samples, written to out."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    value = x.amax(dim=1, keepdim=True)
    chroma = x.amin(dim=1, keepdim=True).neg_().add_(value)
    inverse = chroma.clamp_min(1e-12).reciprocal_()  # numerators below are within +-chroma
    # Hue in sixths of a turn: the formula of the max channel, chosen by lerp with 0/1 weights.
    hue6 = torch.sub(r, g).mul_(inverse).add_(4.0)  # blue is the max
    other = torch.sub(b, r).mul_(inverse).add_(2.0)  # green is the max
    is_max = torch.sub(g, value).sign_().add_(1.0)  # 1.0 where green is the max, else 0.0
    hue6.lerp_(other, is_max)
    torch.sub(g, b, out=other).mul_(inverse)  # red is the max (wins ties, like torchvision)
    torch.sub(r, value, out=is_max).sign_().add_(1.0)
    hue6.lerp_(other, is_max)
    hue6.add_(_column(factor * 6.0, x))
    # _HSV_OFFSETS (5, 3, 1), made on the device: a torch.tensor would be a blocking copy.
    offsets = torch.arange(3, device=x.device, dtype=x.dtype).mul_(-2.0).add_(_HSV_OFFSETS[0])
    k = hue6 + offsets.view(1, 3, 1, 1)
    k.sub_(torch.mul(k, 1.0 / 6.0).floor_().mul_(6.0))  # k mod 6
    ramp = k.sub_(2.0).abs_().neg_().add_(2.0).clamp_(0.0, 1.0)  # min(k, 4 - k) in [0, 1]
    torch.sub(value, ramp.mul_(chroma), out=out)


def color_jitter(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """Brightness, contrast, saturation and hue, each sample in its own order.

    factors (B, 4): per-sample factors in BRIGHTNESS, CONTRAST, SATURATION, HUE columns (1, 1, 1, 0
    leave a sample unchanged). order (B, 4): per-sample permutation of those op codes.
    Per-sample random order, as torchvision's ColorJitter draws per call, is kept because it is
    cheap here: the three linear ops are one blend x -> ratio * x + (1 - ratio) * reference
    (reference 0, mean luma or luma), run for every sample at once with ratio 1 (exactly no
    change) for the samples whose step is another op. Hue, the one costly op, runs once per
    sample: on the CPU each of the 4 steps gathers the samples whose step is hue (1.4x a fixed
    order, not 4x: docs/benchmarks.md); elsewhere the steps split
    at each sample's hue step, see `_color_jitter_masked`.
    """
    order = order.to(x.device)
    factors = factors.to(device=x.device, dtype=x.dtype)
    if _use_masks(x):
        return _color_jitter_masked(x, factors, order)
    return _color_jitter_indexed(x, factors, order)


def _color_jitter_indexed(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """color_jitter in 4 steps of one blend for all samples plus hue on those whose step it is."""
    rgb = x.shape[1] == 3
    everyone = torch.ones(len(x), dtype=torch.bool, device=x.device)
    for step in range(4):
        op = order[:, step]
        factor = factors.gather(1, op[:, None]).squeeze(1)
        x = _linear_step(x, op, factor, everyone, copy=not step)
        if rgb:
            chosen = ((op == HUE) & (factor != 0)).nonzero().squeeze(1)
            if chosen.numel():
                x.index_copy_(0, chosen, adjust_hue(x[chosen], factor[chosen]))
    return x


def _color_jitter_masked(x: Tensor, factors: Tensor, order: Tensor) -> Tensor:
    """color_jitter with no data-dependent indexing, so no synchronisation of a CUDA device.

    A sample's steps split at its hue step: steps 0-2 blend the samples whose hue comes later,
    then hue runs once for the whole batch, then steps 1-3 blend the samples whose hue came
    earlier: 6 blends and one hue of every sample, where the indexed form runs 4 blends and
    hue on the jittered samples only.
    """
    step_factor = factors.gather(1, order)  # (B, 4): the factor of each sample's step
    hue_step = order.eq(HUE).to(torch.uint8).argmax(dim=1)  # (B,): when each sample's hue runs
    steps = torch.arange(4, device=x.device)
    before, after = steps < hue_step[:, None], steps > hue_step[:, None]  # (B, 4) each
    for step in range(3):
        x = _linear_step(x, order[:, step], step_factor[:, step], before[:, step], copy=not step)
    if x.shape[1] == 3:
        hue = factors[:, HUE]
        x = torch.where(_mask(hue != 0, x), adjust_hue(x, hue), x)
    for step in range(1, 4):
        x = _linear_step(x, order[:, step], step_factor[:, step], after[:, step], copy=False)
    return x


def _linear_step(x: Tensor, op: Tensor, factor: Tensor, active: Tensor, copy: bool) -> Tensor:
    """One colour-jitter step for the active samples whose op (B,) is brightness, contrast or
    saturation: x -> factor * x + (1 - factor) * reference, clamped; in place unless copy."""
    rgb = x.shape[1] == 3
    luma = grayscale(x) if rgb else x
    mean = luma.mean(dim=(1, 2, 3), keepdim=True).mul_(_column((op == CONTRAST).to(x.dtype), x))
    if rgb:  # reference = luma for saturation, its mean for contrast, 0 for brightness
        reference = luma.mul_(_column((op == SATURATION).to(x.dtype), x)).add_(mean)
    else:
        reference = mean
    linear = active & (op <= (SATURATION if rgb else CONTRAST))
    ratio = torch.where(linear, factor, torch.ones_like(factor))
    blend = x.lerp if copy else x.lerp_  # the first step copies: the input stays unchanged
    return blend(reference, _column(1.0 - ratio, x)).clamp_(0.0, 1.0)


def gaussian_kernels(sigma: Tensor, kernel_size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels (B, kernel_size), built like torchvision's."""
    half = (kernel_size - 1) / (2.0 * 2.0**0.5)
    positions = torch.linspace(-half, half, kernel_size, device=sigma.device, dtype=sigma.dtype)
    return torch.softmax(-((positions / sigma[:, None]) ** 2), dim=1)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Blur each sample with its own sigma (B,): separable grouped conv, reflect padding.

    Clamped to [0, 1] because the kernel sums to 1 only up to rounding.
    """
    if kernel_size <= 1:
        return x
    b, c, h, w = x.shape
    kernels = gaussian_kernels(sigma.to(device=x.device, dtype=x.dtype), kernel_size)
    # One kernel per (sample, channel) group, by expand: never a read-back from the device
    # (older torch's repeat_interleave read its output size back).
    kernels = kernels[:, None].expand(b, c, kernel_size).reshape(b * c, kernel_size)
    pad = kernel_size // 2
    out = F.pad(x.reshape(1, b * c, h, w), (pad, pad, pad, pad), mode="reflect")
    out = F.conv2d(out, kernels.view(b * c, 1, 1, kernel_size), groups=b * c)
    out = F.conv2d(out, kernels.view(b * c, 1, kernel_size, 1), groups=b * c)
    return out.view(b, c, h, w).clamp_(0.0, 1.0)


def solarize(x: Tensor, apply: Tensor, threshold: float = 0.5) -> Tensor:
    """Invert the pixels at or above threshold, in the samples where apply (B,) is True."""
    return apply_picked(
        apply, x, lambda picked: torch.where(picked >= threshold, 1 - picked, picked)
    )
