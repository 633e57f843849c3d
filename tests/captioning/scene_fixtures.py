"""Tiny captioning data: generated scenes written as PNGs with a captions CSV, and the smallest
contrastive_caption settings."""

from pathlib import Path

from PIL import Image

from selfsup.data.scenes import generate_scenes

TINY_CAPTION = {
    "method.name": "contrastive_caption",
    "model.text_tower": "words",
    "model.text_width": 16,
    "model.text_layers": 1,
    "model.text_heads": 1,
    "model.embed_dim": 8,
    "method.width": 32,
    "train.progress": False,
    "train.eval_every": 0,
    "eval.protocols": "",
    "train.report": False,
}


def write_scene_csv(root: Path, n: int, side: int = 16, captions: list[str] | None = None) -> Path:
    """n generated scenes as PNGs and `captions.csv` (header path,caption) beside them."""
    data = generate_scenes(n, side, seed=5, train=True)
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = ["path,caption"]
    for i in range(n):
        Image.fromarray(data.images[i].permute(1, 2, 0).numpy()).save(root / "img" / f"{i}.png")
        caption = data.captions[i] if captions is None else captions[i]
        lines.append(f"img/{i}.png,{caption}")
    (root / "captions.csv").write_text("\n".join(lines) + "\n")
    return root / "captions.csv"
