"""The word vocabulary and tower, the caption decoder's decoding, and the scenes source."""

import pytest
import torch

import selfsup
from selfsup.config import DataConfig
from selfsup.data.scenes import COLOURS, generate_scenes, load_scenes
from selfsup.errors import SelfsupError
from selfsup.models.captioner import (
    BOS,
    EOS,
    PAD,
    UNK,
    Captioner,
    WordTextEncoder,
    WordTextSpec,
    build_vocabulary,
    decode_words,
    encode_words,
    words,
)
from selfsup.models.registry import spec_class


def test_vocabulary_and_round_trip():
    vocab = build_vocabulary(["A red circle.", "a blue square"])
    assert vocab == ("a", "blue", "circle", "red", "square")
    batch = encode_words(["a red square", "a green circle"], vocab, context=8)
    assert batch["input_ids"][0].tolist() == [BOS, 4, 7, 8, EOS]
    assert batch["input_ids"][1, 2].item() == UNK  # "green" is not in the vocabulary
    assert decode_words(batch["input_ids"][:, 1:], vocab) == ["a red square", "a <unk> circle"]
    cut = encode_words(["a red circle a red circle"], vocab, context=4)["input_ids"][0]
    assert cut.tolist() == [BOS, 4, 7, EOS]  # cut to the context, still ending with EOS
    assert words("It's a RED-circle!") == ["it's", "a", "red", "circle"]


def test_empty_or_wordless_captions_are_refused():
    with pytest.raises(SelfsupError, match="has no words"):
        build_vocabulary(["a circle", "..."], "the test captions")
    with pytest.raises(SelfsupError, match="vocabulary is empty"):
        build_vocabulary([])
    with pytest.raises(SelfsupError, match="vocabulary is empty"):
        WordTextSpec(width=8, layers=1, heads=1, vocab=())


def test_word_spec_round_trips_and_tokenises():
    spec = WordTextSpec(width=8, layers=1, heads=1, context=6, vocab=("a", "circle"))
    again = spec_class("text-words").from_dict(spec.to_dict())
    assert again == spec
    tower = WordTextEncoder(spec)
    assert tower.token_embedding.num_embeddings == 2 + 4
    rows = tower.tokenize_all(["a circle", "circle"])
    assert rows["input_ids"].shape == (2, 6)
    assert tower(rows).shape == (2, 8)


def test_greedy_and_beam_decoding_stop_at_the_end_token():
    torch.manual_seed(0)
    image = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 5))
    image.out_dim = 5
    cap = Captioner(image, vocab_size=9, width=8)
    with torch.no_grad():  # make EOS the likeliest token everywhere but the first step
        cap.decoder.out.bias.zero_()
        cap.decoder.out.bias[EOS] = 5.0
    x = torch.rand(3, 3, 8, 8)
    for beam in (1, 3):
        out = cap.generate(x, max_len=5, beam=beam)
        assert out.shape == (3, 5)
        assert (out[:, 0] == EOS).all() and (out[:, 1:] == PAD).all()


def test_scenes_captions_name_what_is_drawn():
    data = generate_scenes(40, 32, seed=3, train=False)
    for image, refs in zip(data.images, data.references, strict=True):
        assert len(refs) == 6 and refs[-1] == "two shapes"
        full = refs[0].split()
        named = {
            full[2],
            full[-2],
        }  # the two colours of "a SIZE COLOUR SHAPE REL a SIZE COLOUR SHAPE"
        for colour in named:
            rgb = torch.tensor(COLOURS[colour], dtype=torch.uint8).view(3, 1, 1)
            assert (image == rgb).all(0).any(), (refs[0], colour)
    train = generate_scenes(400, 32, seed=0, train=True)
    assert 0.05 < train.captions.count("two shapes") / 400 < 0.3  # generic captions are common
    sub = train.subset(torch.tensor([3, 1]))
    assert sub.references == [train.references[3], train.references[1]]


def test_scenes_source_and_bad_size():
    splits = load_scenes("32", DataConfig())
    assert splits.train.images.shape[1:] == (3, 32, 32) and len(splits.test) == 500
    with pytest.raises(SelfsupError, match="scenes:32 or scenes:64"):
        load_scenes("48", DataConfig())
    assert "scenes" in selfsup.data.registry.SOURCES
