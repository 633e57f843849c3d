"""Image-text retrieval counts ties against the query and matches repeated captions by their
text (issue 18, item 3): constant, all-zero and NaN embeddings used to score R@1 = 1."""

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features
from selfsup.evaluate.crossmodal import caption_groups, recall_at_k
from selfsup.evaluate.registry import run_protocols


@pytest.mark.parametrize("value", [0.0, 0.5])
def test_a_constant_encoder_finds_nothing(value):
    images = torch.full((50, 8), value)
    captions = torch.full((50, 8), value)
    assert recall_at_k(images, captions) == {1: 0.0, 5: 0.0, 10: 0.0}


def test_nan_embeddings_are_refused():
    images = torch.randn(20, 8)
    captions = torch.full((20, 8), float("nan"))
    with pytest.raises(SelfsupError, match="NaN"):
        recall_at_k(images, captions)
    features = Features(images, extra={"caption_features": captions})
    with pytest.raises(SelfsupError, match=r"learned encoder.*not finite.*caption features"):
        run_protocols(features, ("image_text_retrieval",), who="the learned encoder")


def test_repeated_captions_match_by_their_text():
    """Four images of two classes captioned by a template: images 0 and 2 share a caption.
    A perfect encoder maps equal captions to one point: the image finds a caption of its
    text first, which is a match although it is another pair's caption."""
    texts = ["a photo of a cat.", "a photo of a dog.", "a photo of a cat.", "a photo of a dog."]
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.99, 0.1], [0.1, 0.99]])
    captions = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    groups = caption_groups(texts)
    assert groups.tolist() == [0, 1, 0, 1]
    # by position only, caption 2 ties with caption 0 for image 2: ties count against, so
    # image 2 (and image 0) would miss at R@1; by text both captions are its own
    assert recall_at_k(images, captions, (1,))[1] == 0.0
    assert recall_at_k(images, captions, (1,), groups=groups)[1] == 1.0
    features = Features(images, extra={"caption_features": captions, "captions": texts})
    got = run_protocols(features, ("image_text_retrieval",))
    assert got["i2t_r@1"] == 1.0 and got["t2i_r@1"] == 1.0
