"""Word-level captioning parts: a vocabulary built from captions, the `text-words` text tower
(the scratch CLIP tower over those words), and the caption generator (an image tower and a GRU
decoder) with greedy and beam decoding.

Token ids: 0 padding, 1 start of caption, 2 end of caption, 3 unknown word, then the vocabulary's
words in sorted order. Words are the lower-cased runs of letters, digits and apostrophes
(`words`), so "A red circle." and "a red circle" tokenise alike. The vocabulary is part of the
spec: encoder.json carries it and `selfsup.load` rebuilds the same tokenizer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models.text import sentence_list
from selfsup.models.text_scratch import ScratchTextEncoder, ScratchTextSpec, pad_rows

PAD, BOS, EOS, UNK = 0, 1, 2, 3  # PAD 0 as text_scratch.pad_rows pads
SPECIALS = 4
WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """The words of a caption: lower-cased runs of letters, digits and apostrophes."""
    return WORD.findall(text.lower())


def build_vocabulary(captions: list[str], source: str = "the captions") -> tuple[str, ...]:
    """The sorted distinct words of `captions`; a caption of no words, or no words at all, is
    one clear error (a decoder cannot learn to say nothing)."""
    vocab: set[str] = set()
    for i, caption in enumerate(captions):
        found = words(caption)
        if not found:
            raise SelfsupError(
                f"caption {i} of {source} has no words ({caption!r}): every caption needs at "
                "least one word of letters or digits; fix or drop that pair"
            )
        vocab.update(found)
    if not vocab:
        raise SelfsupError(f"{source} hold no captions, so the word vocabulary is empty")
    return tuple(sorted(vocab))


def encode_words(
    captions: list[str], vocab: tuple[str, ...], context: int, pad_to: int | None = None
) -> dict[str, torch.Tensor]:
    """Token ids [BOS] words [EOS], right-padded; unknown words get UNK; a caption longer than
    `context` is cut and still ends with EOS."""
    index = {w: i + SPECIALS for i, w in enumerate(vocab)}
    rows = [[BOS, *[index.get(w, UNK) for w in words(c)][: context - 2], EOS] for c in captions]
    return pad_rows(rows, pad_to)


def decode_words(ids: torch.Tensor, vocab: tuple[str, ...]) -> list[str]:
    """Captions of generated id rows (B, L): words up to the first EOS, specials dropped."""
    out = []
    for row in ids.tolist():
        text = []
        for t in row:
            if t == EOS:
                break
            if t >= SPECIALS:
                text.append(vocab[t - SPECIALS])
            elif t == UNK:
                text.append("<unk>")
        out.append(" ".join(text))
    return out


@dataclass(frozen=True)
class WordTextSpec(ScratchTextSpec):
    """The scratch CLIP text tower over a word vocabulary built from the training captions."""

    kind: ClassVar[str] = "text-words"

    vocab: tuple[str, ...] = ()
    context: int = 24  # words per caption, start and end included

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.vocab:
            raise SelfsupError("the word text tower's vocabulary is empty: it needs captions")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordTextSpec:
        kept = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        return cls(**{**kept, "vocab": tuple(kept.get("vocab", ()))})


class WordTextEncoder(ScratchTextEncoder):
    """The scratch CLIP text tower with word tokens in place of bytes."""

    kind: ClassVar[str] = "text-words"

    def __init__(self, spec: WordTextSpec):
        super().__init__(spec)
        self.token_embedding = nn.Embedding(len(spec.vocab) + SPECIALS, spec.width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)

    def preprocess(self, raw: Any) -> dict[str, torch.Tensor]:
        return encode_words(sentence_list(raw), self.spec.vocab, self.spec.context)

    def tokenize_all(self, sentences: list[str]) -> dict[str, torch.Tensor]:
        return encode_words(sentences, self.spec.vocab, self.spec.context, self.spec.context)

    @classmethod
    def from_assets(cls, spec: WordTextSpec, directory: Path) -> WordTextEncoder:
        return cls(spec)

    def extra_repr(self) -> str:
        s = self.spec
        return f"words ({len(s.vocab)}), causal, width={s.width}, layers={s.layers}"


class CaptionDecoder(nn.Module):
    """A one-layer GRU language model whose initial state is the image's features (Show and
    Tell / NeuralTalk2's shape, the model Dai & Lin's released code starts from)."""

    def __init__(self, feature_dim: int, vocab_size: int, width: int, dropout: float = 0.0):
        super().__init__()
        self.init_state = nn.Linear(feature_dim, width)
        self.embed = nn.Embedding(vocab_size, width, padding_idx=PAD)
        self.gru = nn.GRU(width, width, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(width, vocab_size)

    def initial(self, features: torch.Tensor) -> torch.Tensor:
        """(1, B, width) GRU state from image features (B, feature_dim)."""
        return torch.tanh(self.init_state(features)).unsqueeze(0)

    def forward(self, features: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, L, V) for input ids (B, L) (teacher forcing)."""
        states, _ = self.gru(self.drop(self.embed(inputs)), self.initial(features))
        return self.out(self.drop(states))


class Captioner(nn.Module):
    """Images -> word logits or captions: an image tower (shared with the run's encoder) and a
    `CaptionDecoder`."""

    def __init__(self, image_tower: nn.Module, vocab_size: int, width: int, dropout: float = 0.0):
        super().__init__()
        self.image = image_tower
        self.decoder = CaptionDecoder(image_tower.out_dim, vocab_size, width, dropout)
        self.vocab_size = vocab_size

    def forward(self, images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Logits (B, L-1, V) predicting ids[:, 1:] from ids[:, :-1] ([BOS] w1 .. wn [EOS])."""
        return self.decoder(self.image(images), ids[:, :-1])

    @torch.no_grad()
    def generate(self, images: torch.Tensor, max_len: int, beam: int = 1) -> torch.Tensor:
        """Id rows (B, max_len) without BOS, EOS then padding after the caption: greedy
        (beam 1) or beam search (the highest total log-probability of the finished captions)."""
        features = self.image(images)
        if beam > 1:
            return torch.stack([self._beam(f, max_len, beam) for f in features])
        h = self.decoder.initial(features)
        token = torch.full((len(images),), BOS, dtype=torch.long, device=images.device)
        out = torch.full((len(images), max_len), PAD, dtype=torch.long, device=images.device)
        done = torch.zeros(len(images), dtype=torch.bool, device=images.device)
        for t in range(max_len):
            y, h = self.decoder.gru(self.decoder.embed(token)[:, None], h)
            logits = self.decoder.out(y[:, 0])
            logits[:, [PAD, BOS]] = float("-inf")
            token = logits.argmax(1)
            out[:, t] = torch.where(done, torch.full_like(token, PAD), token)
            done |= token == EOS
        return out

    def _beam(self, feature: torch.Tensor, max_len: int, beam: int) -> torch.Tensor:
        h = self.decoder.initial(feature[None])
        beams = [(0.0, [BOS], h)]
        finished: list[tuple[float, list[int]]] = []
        for _ in range(max_len):
            grown = []
            for score, seq, state in beams:
                token = torch.tensor([[seq[-1]]], device=feature.device)
                y, new = self.decoder.gru(self.decoder.embed(token), state)
                logp = torch.log_softmax(self.decoder.out(y[0, 0]), -1)
                logp[[PAD, BOS]] = float("-inf")
                top = logp.topk(beam)
                for lp, t in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                    grown.append((score + lp, [*seq, t], new))
            grown.sort(key=lambda b: -b[0])
            beams = []
            for b in grown[:beam]:
                (finished.append((b[0], b[1])) if b[1][-1] == EOS else beams.append(b))
            if not beams:
                break
        finished.extend((s, q) for s, q, _ in beams)
        best = max(finished, key=lambda b: b[0])[1][1:]
        row = torch.full((max_len,), PAD, dtype=torch.long, device=feature.device)
        row[: len(best)] = torch.tensor(best[:max_len], device=feature.device)
        return row
