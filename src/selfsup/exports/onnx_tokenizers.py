"""selfsup's own tokenizers (the scratch text tower's UTF-8 bytes, the `text-words` tower's word
vocabulary) rebuilt with the `tokenizers` library, so an ONNX export of those towers carries a
`tokenizer.json` that gives the same ids as `encoder.preprocess` without selfsup.

Bytes: a BPE model with no merges whose vocabulary is the 256 byte tokens at ids byte + 3,
with byte fallback, so every character falls back to its UTF-8 bytes (cut at the context as
`byte_tokenize` cuts). Words: lower-casing, the separators of `captioner.words` removed, a
word-level vocabulary with the unknown word at id 3. Both wrap the sentence in start and end
ids as selfsup does; padding is id 0. The pad token is the one special token named to
transformers, so a text holding the literal string of PAD_TOKEN tokenises to the pad id.
"""

from __future__ import annotations

from typing import Any

PAD_TOKEN = "<|pad|>"


def byte_tokenizer(context: int) -> Any:
    """The scratch text tower's tokenizer: [start] UTF-8 bytes (+3) [end], as `byte_tokenize`."""
    from tokenizers import Tokenizer, models, processors
    from transformers import PreTrainedTokenizerFast

    from selfsup.models.text_scratch import EOT, PAD, SOT, SPECIALS

    vocab = {PAD_TOKEN: PAD, "<|startoftext|>": SOT, "<|endoftext|>": EOT}
    vocab.update({f"<0x{b:02X}>": b + SPECIALS for b in range(256)})
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], byte_fallback=True))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", SOT), ("<|endoftext|>", EOT)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD_TOKEN, model_max_length=context
    )


def word_tokenizer(vocab: tuple[str, ...], context: int) -> Any:
    """The `text-words` tower's tokenizer: [start] word ids (unknown: 3) [end], as
    `captioner.encode_words`."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from selfsup.models.captioner import BOS, EOS, PAD, SPECIALS, UNK, WORD

    table = {PAD_TOKEN: PAD, "<|startoftext|>": BOS, "<|endoftext|>": EOS, "<|unk|>": UNK}
    table.update({w: i + SPECIALS for i, w in enumerate(vocab)})
    tokenizer = Tokenizer(models.WordLevel(vocab=table, unk_token="<|unk|>"))
    tokenizer.normalizer = normalizers.Lowercase()
    # what is not a word (captioner.WORD) separates words and is dropped
    separators = "[^" + WORD.pattern.removeprefix("[").removesuffix("]+") + "]+"
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(separators), behavior="removed")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", BOS), ("<|endoftext|>", EOS)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD_TOKEN, model_max_length=context
    )


def export_tokenizer(encoder: Any) -> Any:
    """The transformers fast tokenizer to save beside a text graph: the encoder's own for a
    transformers model, the rebuilt byte or word tokenizer for the scratch towers."""
    if encoder.kind == "text-scratch":
        return byte_tokenizer(encoder.spec.context)
    if encoder.kind == "text-words":
        return word_tokenizer(encoder.spec.vocab, encoder.spec.context)
    return encoder.tokenizer
