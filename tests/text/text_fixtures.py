"""Helpers of the text tests: a tiny BERT (2 layers, 32 wide) with a WordPiece tokenizer trained
here, saved as a local transformers folder (built in a second, no download), and STS files."""

from pathlib import Path

# A short run on the tiny BERT (no AMP: the runs compare exactly), what the text methods' run
# tests share; each adds its data source, method, model folder and evaluation.
TEXT_RUN = {
    "optim.name": "adamw",
    "optim.lr": 1e-3,
    "train.batch_size": 2,
    "train.epochs": 2,
    "train.progress": False,
    "train.amp": False,
    "train.eval_every": 0,
    "train.report": False,
}

CORPUS = [
    "a man is playing a guitar",
    "a woman is slicing an onion",
    "the cat sits on the mat",
    "a dog runs in the park",
    "children are playing football outside",
    "the stock market fell sharply today",
    "a man plays the flute on stage",
    "two dogs are running through a field",
    "she is cutting a tomato in the kitchen",
    "the president gave a speech on monday",
]


def make_tiny_bert(folder: Path, dropout: float = 0.1) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        CORPUS * 5, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(folder)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def write_sts(folder: Path) -> Path:
    """STS-format train and test files (genre, file, year, id, score, s1, s2[, extra])."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (a, b) in enumerate(zip(CORPUS, CORPUS[1:] + CORPUS[:1], strict=True)):
        genre = "main-captions" if i % 2 else "main-news"
        rows.append(f"{genre}\tf\t2012\t{i}\t{i % 6}.0\t{a}\t{b}")
        rows.append(f'{genre}\tf\t2012\t{i}\t5.0\t{a}\t{a} "quoted"\textra\tcolumns')
    (folder / "sts-train.csv").write_text("\n".join(rows) + "\n")
    (folder / "sts-test.csv").write_text("\n".join(rows[::-1]) + "\n")
    return folder


def no_dropout_spec():
    """The tiny BERT without dropout as an encoder spec, built once in the temp folder.

    The 1-vs-2 gloo tests rebuild their method inside each spawned process, where no pytest
    fixture reaches; without dropout both processes see the same views as the one process.
    Call it once in the test before the processes start, so they do not both build it.
    """
    import tempfile

    from selfsup.models.text import TextEncoderSpec

    folder = Path(tempfile.gettempdir()) / "selfsup-tiny-bert-nodrop"
    if not (folder / "config.json").is_file():
        make_tiny_bert(folder, dropout=0.0)
    return TextEncoderSpec(str(folder))
