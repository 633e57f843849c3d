"""CPU inference speed of ONNX exports: onnxruntime vs torch, samples/s at batch 1 and 64; and
how far the fp32 and fp16 graphs' embeddings lie from torch's.

Run by hand: `python benchmarks/onnx_speed.py [--threads 2] [--rounds 5] [--seconds 0.5]`.
Each encoder (random weights: speed does not depend on them) is saved as a run and exported
with `selfsup export --format onnx`; torch runs `encoder(x)` under `torch.inference_mode()`
with `torch.set_num_threads(threads)`, onnxruntime the graph with intra_op_num_threads =
threads (one inter-op thread). Both see the same inputs. A round runs the batch repeatedly for
at least `--seconds`; the figure is the best round of `--rounds` (other processes on a shared
machine only ever add time, to either column). Threads wait passively between parallel
sections, in both libraries (OMP_WAIT_POLICY=PASSIVE for torch, allow_spinning 0 for
onnxruntime), unless `--spin`: on a shared machine spinning threads fight the other processes
for the cores (torch's 2-thread ResNet-18 ran 6x slower under a load of 5 with spinning).
The second table: max |onnxruntime - torch| over the 64 embeddings of the fp32 graph and of
the `--fp16` graph, and the latter over the largest |embedding| (what the export's own check
bounds by 2e-2). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if "--spin" not in sys.argv:  # read by torch's OpenMP when it starts, so before `import torch`
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from selfsup.export import save_encoder
from selfsup.exports.export import export
from selfsup.models.encoder import ImageEncoderSpec
from selfsup.models.registry import build_encoder
from selfsup.models.series import series_spec
from selfsup.models.text import TextEncoderSpec

SENTENCES = [
    "a man is playing a guitar on the stage tonight",
    "the stock market fell sharply today after the news",
    "two dogs are running through a green field",
    "she is cutting a tomato in the kitchen",
]


def small_bert(folder: Path) -> Path:
    """A BERT of 4 layers, 256 wide (about 11 M parameters with its 8k-word embedding table), with
    a WordPiece tokenizer trained here: a local model folder, no download."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(
        SENTENCES * 10, trainers.WordPieceTrainer(vocab_size=8000, special_tokens=specials)
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[(t, tok.token_to_id(t)) for t in ("[CLS]", "[SEP]")],
    )
    names = dict(unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]")
    PreTrainedTokenizerFast(tokenizer_object=tok, mask_token="[MASK]", **names).save_pretrained(
        folder
    )
    config = BertConfig(
        vocab_size=8000,
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def cases(root: Path) -> list[tuple[str, Any, Callable[[int], dict[str, torch.Tensor]]]]:
    """(name, encoder, inputs of a batch size) of each benchmarked encoder."""
    gen = torch.Generator().manual_seed(0)

    def images(c: int, s: int) -> Callable[[int], dict[str, torch.Tensor]]:
        return lambda n: {"pixels": torch.rand(n, c, s, s, generator=gen)}

    def tokens(n: int) -> dict[str, torch.Tensor]:  # 32 tokens a sentence, no padding
        ids = torch.randint(5, 8000, (n, 32), generator=gen)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def image(backbone: str, c: int, s: int) -> Any:
        return build_encoder(ImageEncoderSpec(backbone, c, s, True, (0.5,) * c, (0.25,) * c))

    text = TextEncoderSpec(str(small_bert(root / "bert")), max_length=32)
    return [
        ("convnet, digits 1x8x8", image("convnet", 1, 8), images(1, 8)),
        ("resnet18, 3x32x32", image("resnet18", 3, 32), images(3, 32)),
        ("vit-tiny (patch 4), 3x32x32", image("vit-tiny-p4", 3, 32), images(3, 32)),
        ("BERT 4x256, 32 tokens", build_encoder(text), tokens),
        (
            "series cpc-small, 3x256",
            build_encoder(series_spec(3, 256)),
            lambda n: {"series": torch.randn(n, 3, 256, generator=gen)},
        ),
    ]


def best_rate(step: Callable[[], Any], batch: int, rounds: int, seconds: float) -> float:
    """Samples per second of the best of `rounds` rounds of at least `seconds` each."""
    step()  # warm-up: first-call allocations and kernel selection
    best = 0.0
    for _ in range(rounds):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            step()
            count += 1
        best = max(best, count * batch / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--spin", action="store_true", help="let idle threads spin (both)")
    args = parser.parse_args()

    import onnxruntime as ort

    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    if not args.spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    print(
        f"threads {args.threads}; best of {args.rounds} rounds of >= {args.seconds} s; "
        f"idle threads {'spin' if args.spin else 'wait passively'}; "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    print()
    print("| encoder | batch | torch samples/s | onnxruntime samples/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    agreement = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i, (name, encoder, make) in enumerate(cases(root)):
            run = root / f"run{i}"
            save_encoder(encoder, run)
            graph = export(run, "onnx", root / f"onnx{i}") / "model.onnx"
            half = export(run, "onnx", root / f"fp16-{i}", fp16=True) / "model.onnx"
            session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
            encoder.eval()
            for batch in (1, 64):
                x = make(batch)
                feeds = {k: v.numpy() for k, v in x.items()}
                arg = x if "input_ids" in x else next(iter(x.values()))
                with torch.inference_mode():
                    torch_rate = best_rate(partial(encoder, arg), batch, args.rounds, args.seconds)
                run_graph = partial(session.run, ["embedding"], feeds)
                ort_rate = best_rate(run_graph, batch, args.rounds, args.seconds)
                ratio = ort_rate / torch_rate
                print(f"| {name} | {batch} | {torch_rate:,.0f} | {ort_rate:,.0f} | {ratio:.2f}x |")
            with torch.inference_mode():
                want = encoder(arg).float().numpy()
            fp16 = ort.InferenceSession(str(half), options, providers=["CPUExecutionProvider"])
            diff32 = abs(session.run(["embedding"], feeds)[0] - want).max()
            diff16 = abs(fp16.run(["embedding"], feeds)[0] - want).max()
            scale = max(1.0, abs(want).max())
            agreement.append(f"| {name} | {diff32:.1e} | {diff16:.1e} | {diff16 / scale:.1e} |")
    print()
    print("| encoder | fp32 max abs diff | fp16 max abs diff | fp16 / max(1, max abs emb) |")
    print("|---|---:|---:|---:|")
    print("\n".join(agreement))


if __name__ == "__main__":
    main()
