"""BLEU and CIDEr-D against hand-computed cases and the COCO toolkit; R@1 never counts ties."""

import math

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate.captioning import bleu, cider_d, text_to_image_r1


def test_bleu_by_hand():
    # candidate "a red circle" (3 words) against "a red square" and "a blue circle":
    # 1-grams: a, red, circle all in some reference -> 3/3; 2-grams: "a red" yes, "red circle"
    # no -> 1/2; no 3-gram matches -> BLEU-3 = (1 * 1/2 * tiny/1)^(1/3) ~ 0; lengths equal.
    b = bleu(["a red circle"], [["a red square", "a blue circle"]])
    assert abs(b[0] - 1.0) < 1e-9
    assert abs(b[1] - math.sqrt(0.5)) < 1e-9
    assert b[3] < 1e-3
    # clipping: "red red red" against "a red circle" counts "red" once: 1/3
    assert abs(bleu(["red red red"], [["a red circle"]])[0] - 1 / 3) < 1e-9
    # brevity: "red circle" (2) vs closest reference length 3: penalty exp(1 - 3/2)
    b = bleu(["red circle"], [["a red circle"]])
    assert abs(b[0] - math.exp(1 - 3 / 2)) < 1e-6
    # an exact reference scores 1
    assert (
        abs(
            bleu(["a red circle left of a blue square"], [["a red circle left of a blue square"]])[
                3
            ]
            - 1
        )
        < 1e-6
    )


def test_cider_d_by_hand():
    # two images; image 0's candidate equals its only reference, image 1's shares nothing.
    hyps = ["red circle", "blue"]
    refs = [["red circle"], ["green square"]]
    mean, per = cider_d(hyps, refs)
    # image 0: every n-gram of "red circle" occurs in one of 2 reference sets: idf = log 2;
    # candidate and reference vectors are equal: cosine 1 for n = 1, 2 and 0 for n = 3, 4
    # (no such n-grams); same length -> no penalty; mean over n = 2/4, x10 = 5.
    assert abs(per[0] - 5.0) < 1e-9
    assert per[1] == 0.0
    assert abs(mean - 2.5) < 1e-9
    # the length penalty: the toolkit's length is the bigram count
    _, per = cider_d(["red circle red circle red circle", "x"], refs)
    assert per[0] < 5.0


def test_against_pycocoevalcap():
    bleu_mod = pytest.importorskip("pycocoevalcap.bleu.bleu")
    cider_mod = pytest.importorskip("pycocoevalcap.cider.cider")
    import random

    from selfsup.data.scenes import generate_scenes

    refs = generate_scenes(60, 32, 3, train=False).references
    rng = random.Random(0)
    hyps = [rng.choice([*r, "two shapes", "a red circle", "circle", "a a a a a"]) for r in refs]
    gts = {i: r for i, r in enumerate(refs)}
    res = {i: [h] for i, h in enumerate(hyps)}
    want_bleu, _ = bleu_mod.Bleu(4).compute_score(gts, res, verbose=0)
    want_cider, want_per = cider_mod.Cider().compute_score(gts, res)
    assert bleu(hyps, refs) == pytest.approx(want_bleu, abs=1e-12)
    mean, per = cider_d(hyps, refs)
    assert mean == pytest.approx(want_cider, abs=1e-9)
    assert per == pytest.approx(list(want_per), abs=1e-9)


def test_r1_ties_never_count():
    images = torch.eye(4)
    assert text_to_image_r1(torch.eye(4), images) == 1.0
    # every caption embeds alike: all images tie, no hit
    assert text_to_image_r1(torch.ones(4, 4), images + 1) == 0.0
    text = torch.eye(4)
    text[1] = text[0]  # captions 0 and 1 both find image 0: caption 1 misses
    assert text_to_image_r1(text, images) == 0.75
    with pytest.raises(SelfsupError, match="NaN"):
        text_to_image_r1(torch.full((4, 4), float("nan")), images)


def test_bad_inputs():
    with pytest.raises(SelfsupError, match="reference sets"):
        bleu(["a"], [["a"], ["b"]])
    with pytest.raises(SelfsupError, match="at least one reference"):
        cider_d(["a"], [[]])
