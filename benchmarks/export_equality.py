"""How close each export's loader comes to selfsup's own features: the largest absolute
difference between `selfsup.embed` / the encoder's forward and sentence-transformers', timm's
and torchvision's models on the exported files (the word2vec export is exact by construction:
9 significant digits give float32 back; its test checks equality).

Run by hand: `python benchmarks/export_equality.py [--threads 1]`. Random-weight encoders (a
tiny 2-layer BERT, ResNet-18 at 64 px and with the CIFAR stem at 32 px, ViT-Tiny/16 at 224 px,
ViT-mini/4 at 32 px, batch-norm statistics drawn at random), built in seconds with no download;
prints one row per export. The tests (tests/exports/) assert the same within 1e-5.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

import selfsup
from selfsup.export import save_encoder
from selfsup.exports.export import export
from selfsup.models.encoder import ImageEncoder, ImageEncoderSpec
from selfsup.models.text import TextEncoder, TextEncoderSpec

SENTENCES = ["a man is playing a guitar", "the cat sits on the mat", "two dogs run outside"]
MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def tiny_bert(folder: Path) -> Path:
    """A 2-layer, 32-wide BERT with a WordPiece vocabulary trained on SENTENCES."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(SENTENCES * 5, trainers.WordPieceTrainer(special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    ).save_pretrained(folder)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def image_encoder(folder: Path, backbone: str, size: int, cifar_stem: bool) -> ImageEncoder:
    torch.manual_seed(0)
    encoder = ImageEncoder(ImageEncoderSpec(backbone, 3, size, cifar_stem, MEAN, STD))
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    save_encoder(encoder.eval(), folder)
    return encoder.eval()


def image_gap(model: torch.nn.Module, encoder: ImageEncoder) -> float:
    size = encoder.spec.height_width
    x = torch.randint(0, 256, (4, 3, *size), generator=torch.Generator().manual_seed(1))
    x = x.to(torch.uint8)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (MEAN, STD))
    with torch.no_grad():
        return (model.eval()((x.float() / 255 - mean) / std) - encoder(x)).abs().max().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    import timm
    import torchvision
    from sentence_transformers import SentenceTransformer

    tmp = Path(tempfile.mkdtemp())
    rows = []
    bert = tiny_bert(tmp / "bert")
    for pooling, normalize in (("mean", True), ("cls", False)):
        run = tmp / f"text-{pooling}"
        spec = TextEncoderSpec(str(bert), pooling=pooling, max_length=12, normalize=normalize)
        save_encoder(TextEncoder(spec), run)
        folder = export(run, "sentence-transformers", tmp / f"st-{pooling}")
        got = SentenceTransformer(str(folder), device="cpu").encode(SENTENCES)
        gap = np.abs(got - selfsup.embed(run, SENTENCES)).max()
        rows.append((f"sentence-transformers, {pooling} pooling, normalize={normalize}", gap))
    for backbone, size, stem in (
        ("resnet18", 64, False),
        ("vit-tiny", 224, False),
        ("vit-mini", 32, True),
    ):
        encoder = image_encoder(tmp / f"img-{backbone}", backbone, size, stem)
        folder = export(tmp / f"img-{backbone}", "timm", tmp / f"timm-{backbone}")
        model = timm.create_model(f"local-dir:{folder}", pretrained=True)
        rows.append((f"timm local-dir, {backbone} at {size} px", image_gap(model, encoder)))
    for size, stem in ((64, False), (32, True)):
        encoder = image_encoder(tmp / f"rn-{size}", "resnet18", size, stem)
        folder = export(tmp / f"rn-{size}", "torchvision", tmp / f"tv-{size}")
        model = torchvision.models.resnet18()
        if stem:  # the two lines the model card gives
            model.conv1 = torch.nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
            model.maxpool = torch.nn.Identity()
        model.fc = torch.nn.Identity()
        model.load_state_dict(torch.load(folder / "model.pth", weights_only=True))
        what = "CIFAR stem, 32 px" if stem else "64 px"
        rows.append((f"torchvision resnet18, {what}", image_gap(model, encoder)))
    width = max(len(name) for name, _ in rows) + 2
    print("export".ljust(width) + "max |difference|")
    for name, gap in rows:
        print(name.ljust(width) + f"{gap:.2e}")


if __name__ == "__main__":
    main()
