"""Contrastive captioning on the generated scenes: BLEU-4, CIDEr-D and text-to-image R@1 of
the MLE captioner, the contrastive one, and baselines, printed as a markdown table.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c 0 \
        PYTHONPATH=src python benchmarks/caption_scenes.py --out /tmp/caption-bench

Trains (1) the retriever: the `clip` method on the scenes' training split (word text tower,
DCGAN image tower, no augmentation: a flip or crop would move what "left of" names), (2)
`contrastive_caption` on the same split, MLE for `contrastive_start` of training then the
contrastive stage. Both captioners (the frozen MLE copy taken at the switch, and the final
model) caption the same held-out scenes. Rows beside them: the captioner as initialised
(untrained, same seed), the most frequent training caption for every image, the caption of the
nearest training image in raw pixels (L2), and the held-out images' own most distinctive
reference (an oracle for R@1 only: its BLEU would be 1 by construction). Wall times here are
not speed figures (shared cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter
from pathlib import Path

import torch

import selfsup
from selfsup.evaluate.captioning import caption_scores
from selfsup.methods.contrastive_caption import load_trained
from selfsup.modalities import get_modality
from selfsup.run import build_method


def common(args: argparse.Namespace) -> dict:
    return {
        "data.source": "scenes",
        "model.text_tower": "words",
        "model.backbone": "dcgan",
        "train.batch_size": args.batch,
        "train.progress": False,
        "train.eval_every": 0,
        "eval.protocols": "",
        "train.report": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/caption-bench"))
    parser.add_argument("--clip-epochs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--contrastive-start", type=float, default=0.6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--cosine", action="store_true", help="method.constant_lr=false: the run's cosine schedule"
    )
    parser.add_argument("--figure", type=Path, default=None, help="save the caption sheet here")
    args = parser.parse_args()
    t0 = time.time()
    clip_run, cap_run = args.out / "clip", args.out / "caption"
    if not (clip_run / "encoder.safetensors").is_file():
        cfg = selfsup.make_config(
            **common(args),
            **{
                "method.name": "clip",
                "train.epochs": args.clip_epochs,
                "model.text_width": 64,
                "model.text_layers": 2,
                "model.text_heads": 2,
                "model.embed_dim": 128,
            },
        )
        # no augmentation: set on the dataclass, since "none" given as a key's value reads as
        # None (the default recipe, with flips)
        cfg = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, augment="none"))
        selfsup.pretrain(cfg, clip_run, overwrite=True)
    if not (cap_run / "encoder.safetensors").is_file():
        cfg = selfsup.make_config(
            **common(args),
            **{
                "method.name": "contrastive_caption",
                "method.contrastive_start": args.contrastive_start,
                "method.constant_lr": not args.cosine,
                "train.epochs": args.epochs,
            },
        )
        selfsup.pretrain(cfg, cap_run, overwrite=True)
    retriever = selfsup.load(clip_run)
    method, splits = load_trained(cap_run)
    test, train = splits.test, splits.train
    images, refs = test.images, test.references

    def batched(net: str) -> list[str]:
        return [
            c for i in range(0, len(images), 256) for c in method.captions(images[i : i + 256], net)
        ]

    rows = {
        "MLE captioner (frozen copy at the switch)": batched("reference"),
        "contrastive captioner (final)": batched("captioner"),
    }
    torch.manual_seed(0)
    untrained = build_method(_cfg(cap_run), get_modality("pair"), train).eval()
    rows["untrained captioner (same architecture, as initialised)"] = [
        c for i in range(0, len(images), 256) for c in untrained.captions(images[i : i + 256])
    ]
    common_caption = Counter(train.captions).most_common(1)[0][0]
    rows[f'most frequent training caption ("{common_caption}") for every image'] = [
        common_caption
    ] * len(images)
    flat_train = train.images.flatten(1).float()
    nearest = torch.cdist(images.flatten(1).float(), flat_train).argmin(1)
    rows["caption of the nearest training image (raw pixels, L2)"] = [
        train.captions[i] for i in nearest.tolist()
    ]
    print(f"\n{len(images)} held-out scenes; retriever: clip on the training split\n")
    print("| captioner | BLEU-4 | CIDEr-D | text-to-image R@1 |")
    print("|---|---|---|---|")
    for name, hyps in rows.items():
        s = caption_scores(hyps, refs, retriever, images)
        print(f"| {name} | {s['bleu4']:.3f} | {s['cider_d']:.3f} | {s['r1']:.3f} |")
    oracle = caption_scores([r[0] for r in refs], refs, retriever, images)
    print(f"| oracle: each image's own most distinctive reference | - | - | {oracle['r1']:.3f} |")
    print("\nexamples (MLE -> contrastive):")
    mle, con = (
        rows["MLE captioner (frozen copy at the switch)"],
        rows["contrastive captioner (final)"],
    )
    for i in range(8):
        print(f"- {refs[i][0]}: {mle[i]!r} -> {con[i]!r}")
    if args.figure is not None:
        from PIL import Image

        from selfsup.methods.contrastive_caption import caption_sheet

        sheet = caption_sheet(images[:8], [("MLE", mle[:8]), ("contrastive", con[:8])])
        Image.fromarray(sheet).save(args.figure)
    print(f"\nwall time {time.time() - t0:.0f} s (shared cores: not a speed figure)")


def _cfg(run: Path):
    import json

    from selfsup.config import config_from_dict

    return config_from_dict(json.loads((run / "config.json").read_text())["config"])


if __name__ == "__main__":
    main()
