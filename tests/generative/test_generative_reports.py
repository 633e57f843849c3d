"""Each generative method's pictures reach the report, per evaluation step too, and the page
renders in headless Chromium (issue 23: samples, reconstructions, translations, swap grids,
traversals)."""

import numpy as np
import pytest
from browser import chromium, chromium_or_skip, console_lines
from method_harness import FAST
from PIL import Image
from test_cyclegan import digits_npz

import selfsup

# Small settings per method, so that two epochs of digits take seconds; the figures they draw.
SETTINGS = {
    "gan": {"train.batch_size": 128},
    "bigan": {"train.batch_size": 128},
    "vqvae": {"train.batch_size": 128, "method.prior_start": 0.5},
    "rbm": {"train.batch_size": 64, "optim.lr": 0.5},
    "nade": {"train.batch_size": 64, "method.hidden": 32},
    "vae": {"train.batch_size": 64},
    "disentangle": {"train.batch_size": 128},
    "cyclegan": {"train.batch_size": 64, "method.width": 8, "method.disc_width": 8},
}
FAST_CHECK = "gan"  # the one in the default suite; the others are marked slow


def render(name: str, tmp_path) -> str:
    overrides = (
        FAST
        | SETTINGS[name]
        | {
            "method.name": name,
            "train.epochs": 2,
            "train.eval_every": 1,
            "eval.protocols": "knn",
            "train.report": True,
        }
    )
    if name == "cyclegan":
        overrides["data.source"] = digits_npz(tmp_path / "a.npz", slice(0, 320), inverted=False)
        overrides["data.source_b"] = digits_npz(tmp_path / "b.npz", slice(320, 640), inverted=True)
    run = tmp_path / "run"
    selfsup.pretrain(selfsup.make_config(**overrides), run)
    finals = sorted((run / "figures").glob("*.png"))
    steps = sorted((run / "figures" / "steps").glob("*.png"))
    assert finals and steps, f"{name} drew no pictures"
    for path in finals + steps:
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        assert pixels.std() > 1, f"{path.name} is blank"
    page = (run / "report.html").read_text()
    assert '<section id="figures">' in page and "over training" in page
    assert page.count("data:image/png;base64,") >= len(finals) + len(steps)
    browser = chromium_or_skip()
    dom = chromium(browser, tmp_path, "--dump-dom", (run / "report.html").resolve().as_uri())
    assert '<section id="figures">' in dom.stdout, dom.stderr[-2000:]
    assert console_lines(dom) == []
    return page


CASES = [
    pytest.param(name, marks=() if name == FAST_CHECK else pytest.mark.slow) for name in SETTINGS
]


@pytest.mark.parametrize("name", CASES)
def test_generative_pictures_reach_the_report_and_render(name, tmp_path):
    render(name, tmp_path)
