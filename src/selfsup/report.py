"""A run's report: one self-contained HTML page (`report.html`) of its curves, embeddings,
neighbours, evaluation, config and environment. Figures are PNG data URIs; nothing is fetched.

Each section degrades on its own: a run without eval.json, without eval lines or without
labels gets a page that says so where the missing piece would have been.
"""

from __future__ import annotations

import argparse
import base64
import html
import inspect
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.config import flatten
from selfsup.data.registry import source_modality
from selfsup.devices import numba_without_openmp
from selfsup.embedding import encode_rows, unit_rows
from selfsup.errors import SelfsupError
from selfsup.evaluate.classical import TITLES
from selfsup.evaluate.registry import PROTOCOLS, usable
from selfsup.evaluate.store import other_evaluations
from selfsup.export import load
from selfsup.methods import is_supervised
from selfsup.metrics import read_metrics
from selfsup.modalities import get_modality
from selfsup.modalities.sections import subsample
from selfsup.report_parts import esc as _esc
from selfsup.report_parts import figure_html as _figure_html
from selfsup.report_parts import note as _note
from selfsup.report_parts import section_html
from selfsup.run_data import load_run_splits, run_config, run_evaluation_data
from selfsup.rundir import RunDir
from selfsup.units import UNIT_NOTE, column, format_figure, is_percent, shown_value

REPORT_FILE = "report.html"

# (metrics key, record kind, panel title); a panel appears when the run logged its key. A title
# gets its unit from `selfsup.units` ("(%)" for a share of the queries).
CURVES = [
    ("loss", "train", "training loss"),
    ("lr", "train", "learning rate"),
    ("samples_per_s", "train", "samples / s"),
    ("images_per_s", "train", "images / s"),  # runs before samples_per_s
    ("knn_top1", "eval", "online kNN top-1"),
    ("proj_std", "train", "collapse: std of normalised projections"),
    ("proj_effective_rank", "train", "collapse: effective rank of projections"),
    ("sts_spearman", "eval", "online STS Spearman"),
    ("backbone_std", "eval", "backbone feature std"),
    ("alignment", "eval", "alignment (lower is better)"),
    ("uniformity", "eval", "uniformity (lower is better)"),
]

# Numbers in metrics.jsonl records that are not curves.
NOT_CURVES = {"step", "epoch"}


@dataclass(frozen=True)
class Panel:
    """One plot of the training curves: its record kind, the keys drawn in it (one line each,
    in natural order: k2 before k10) and its title (with its unit)."""

    kind: str
    keys: tuple[str, ...]
    title: str


def natural_key(text: str) -> list[Any]:
    """Sort key that orders the numbers inside names by value: cpc_acc_k2 before cpc_acc_k10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _family(key: str) -> str:
    """The name a figure shares with its siblings, which go in one panel: i2t_r@1, i2t_r@5 ->
    "i2t_r@"; zeroshot_top1/top5 -> "zeroshot_top"; cpc_acc_k1..k12 -> "cpc_acc_k";
    sts_spearman@<file or genre> -> "sts_spearman@". Otherwise the key itself."""
    if "@" in key:
        return key.split("@", 1)[0] + "@"
    match = re.match(r"^(.*?(?:_top|_k))\d+$", key)
    return match.group(1) if match else key


CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1150px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 1px solid #ddd; }
.sub { color: #666; } .note { color: #8a5a00; background: #fff6e0; padding: .5em .8em; }
table { border-collapse: collapse; margin: .5em 0; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: middle; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img.fig { max-width: 100%; } img.px { image-rendering: pixelated; }
div.wide { overflow-x: auto; max-width: 100%; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def write_report(run: str | Path, *, max_points: int = 2000, device: str = "cpu") -> Path:
    """Write `report.html` into the run directory and return its path.

    At most `max_points` test embeddings go into the 2-D map (a seeded subsample), which bounds
    the time t-SNE takes.
    """
    start = time.perf_counter()
    if max_points < 1:
        raise SelfsupError(f"max_points must be at least 1, got {max_points}")
    root = Path(run)
    config_path = root / "config.json"
    if not config_path.is_file():
        raise SelfsupError(f"{root} is not a run directory (no config.json)")
    config = json.loads(config_path.read_text()).get("config", {})
    environment = _read_json(root / "environment.json")
    evaluation = _read_json(root / "eval.json")
    records = read_metrics(root / "metrics.jsonl")
    embedding_map, samples, no_eval = _embedding_sections(root, max_points, device)
    sections = [
        ("curves", "Training curves", _curves_html(records, no_eval)),
        ("map", "Embedding map", embedding_map),
        *samples,
        *_method_figures(root),
        ("evaluation", "Evaluation", _evaluation_html(evaluation, config)),
        *_other_evaluations_sections(root, config),
        ("config", "Config", _key_value_table(flatten(config, whole=(), keep_empty=True))),
        ("environment", "Environment", _environment_html(environment)),
    ]
    page = _page(root, config, records, sections, time.perf_counter() - start)
    out = root / REPORT_FILE
    out.write_text(page, encoding="utf-8")
    return out


# ---------------------------------------------------------------- small helpers


def _method_figures(root: Path) -> list[tuple[str, str, str]]:
    """A section of what the method saved: its pictures in `figures/` (reconstructions,
    samples), the same pictures at each periodic evaluation (`figures/steps/`, oldest first),
    and its own held-out figures (`method_figures.json`: a density model's NLL)."""
    folder = root / "figures"
    paths = sorted(folder.glob("*.png")) if folder.is_dir() else []
    steps = sorted((folder / "steps").glob("*-step*.png")) if (folder / "steps").is_dir() else []
    own = _read_json(RunDir(root).method_figures)
    if not (paths or steps or own):
        return []
    items = []
    if own:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(format_figure(k, v))}</td></tr>"
            for k, v in own["figures"].items()
        )
        items.append(
            f"<p>On the held-out samples ({html.escape(str(own.get('queries', '')))}), "
            f"after step {own.get('step')}:</p><table>{rows}</table>"
        )
    items.extend(_picture(path, path.stem.replace("-", " ")) for path in paths)
    by_title: dict[str, list[Path]] = {}
    for path in steps:
        by_title.setdefault(path.stem.rsplit("-step", 1)[0], []).append(path)
    for title, series in by_title.items():
        pictures = "".join(_picture(p, f"step {int(p.stem.rsplit('-step', 1)[1])}") for p in series)
        items.append(
            f"<h3>{html.escape(title.replace('-', ' '))}, over training</h3>"
            f'<div style="display: flex; flex-wrap: wrap; gap: 8px">{pictures}</div>'
        )
    return [("figures", "What the method learned", "".join(items))]


def _picture(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    title = html.escape(caption)
    return (
        f'<figure><img alt="{title}" src="data:image/png;base64,{data}" '
        f'style="image-rendering: pixelated; max-width: 100%"><figcaption>{title}'
        "</figcaption></figure>"
    )


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError:
        return None


def _format_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_value(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def _key_value_table(items: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{_esc(k)}</th><td>{_esc(_format_value(v))}</td></tr>" for k, v in items.items()
    )
    return f"<table>{rows}</table>"


# ---------------------------------------------------------------- sections


def curve_panels(records: list[dict[str, Any]]) -> list[Panel]:
    """Every curve the records hold: the standard ones, then each other number a method logs
    from its loss (a pretext task's accuracy, CPC's per-step accuracy) and each other figure
    of the periodic evaluation (zero-shot, retrieval, STS per genre), siblings in one panel."""
    panels = [
        Panel(kind, (key,), title + (" (%)" if is_percent(key) else ""))
        for key, kind, title in CURVES
        if any(r.get("kind", "train") == kind and _number(r.get(key)) for r in records)
    ]
    for kind in ("train", "eval"):
        known = {key for key, k, _ in CURVES if k == kind}
        keys = {
            key
            for r in records
            if r.get("kind", "train") == kind
            for key, value in r.items()
            if _number(value) and key not in known | NOT_CURVES and not key.endswith("_reference")
        }
        families: dict[str, list[str]] = {}
        for key in sorted(keys, key=natural_key):
            families.setdefault(_family(key), []).append(key)
        for family in sorted(families, key=natural_key):
            members = families[family]
            numbered = all(k[len(family) :].isdigit() for k in members)
            suffix = "…" if not numbered else ("" if family.endswith("_k") else "k")
            name = members[0] if len(members) == 1 else family + suffix
            title = name.replace("_top", " top-").replace("_", " ")
            title += " (%)" if all(is_percent(k) for k in members) else ""
            prefix = "online " if kind == "eval" else ""
            panels.append(Panel(kind, tuple(members), prefix + title))
    return panels


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _curves_html(records: list[dict[str, Any]], no_eval: str | None = None) -> str:
    """One panel per logged quantity (or family of quantities) against the training step.
    `no_eval`: why the run logged no periodic evaluation, said when it has none."""
    from matplotlib.figure import Figure  # lazily (as below): only a report draws; heavy

    panels = []
    for panel in curve_panels(records):
        lines = []
        for key in panel.keys:
            points = [
                (r["step"], r[key])
                for r in records
                if r.get("kind", "train") == panel.kind and _number(r.get(key))
            ]
            if points:
                lines.append((key, points))
        if lines:
            panels.append((panel, lines))
    if not panels:
        return _note("no metrics.jsonl records in this run: nothing to plot")
    cols = 3
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(4.2 * cols, 2.8 * rows))
    for i, (panel, lines) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        for key, points in lines:
            steps, values = np.array(points, dtype=float).T
            values = shown_value(key, 1.0) * values  # x 100 for a percentage
            few = panel.kind == "eval" or len(steps) <= 3  # a line of 1-3 points needs markers
            label = key if len(lines) > 1 else None
            ax.plot(steps, values, marker="o" if few else None, ms=3, lw=1.4, label=label)
        if len(lines) > 1:
            ax.legend(fontsize=7, ncol=2 if len(lines) > 6 else 1)
        if panel.keys == ("proj_std",):
            ref = [r.get("proj_std_reference") for r in records if r.get("kind") == "train"]
            ref = [v for v in ref if isinstance(v, (int, float))]
            if ref:
                ax.axhline(ref[-1], ls="--", c="grey", lw=1, label="1/sqrt(d): no collapse")
                ax.legend(fontsize=8)
        if panel.keys == ("lr",):
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.set_title(panel.title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    text = ""
    if not any(panel.kind == "eval" for panel, _ in panels):
        why = no_eval or "train.eval_every 0, or no evaluation data the online protocols can use"
        text = _note(f"no evaluation lines in metrics.jsonl: {why}")
    return _figure_html(fig, "training curves") + text


def _evaluation_html(evaluation: Any, config: dict[str, Any]) -> str:
    """The evaluation table: one row per figure (its unit in its name), one column per encoder
    (learned, before training, raw input), so that it stays narrow however many figures a
    protocol gives (STS per file and genre)."""
    if not isinstance(evaluation, dict) or not evaluation:
        return _note("no eval.json in this run; run `selfsup evaluate RUN` to make one")
    titles = _row_titles(config)
    queries = evaluation.get("queries")
    evaluation_note = evaluation.get("note")
    caveat = evaluation.get("caveat")
    skipped = evaluation.get("skipped")
    sampled = evaluation.get("raw_sample")
    classical = evaluation.get("classical")
    evaluation = {k: v for k, v in evaluation.items() if isinstance(v, dict)}
    keys = list(dict.fromkeys(k for row in evaluation.values() for k in row))
    head = "<tr><th>figure</th>" + "".join(
        f"<th>{_esc(titles.get(name, name))}</th>" for name in evaluation
    )
    body = ""
    for key in keys:
        cells = "".join(
            f'<td class="num">{_esc(format_figure(key, row.get(key)))}</td>'
            for row in evaluation.values()
        )
        body += f"<tr><th>{_esc(column(key))}</th>{cells}</tr>"
    where = f" Queries: {_esc(queries)}." if isinstance(queries, str) else ""
    note = evaluation_note if isinstance(evaluation_note, str) else ""
    where += f" <b class='supervised'>Note: {_esc(note)}.</b>" if note else ""
    where += f" Not computed: {_esc(skipped)}." if isinstance(skipped, str) else ""
    where += f" Sampled: {_esc(sampled)}." if isinstance(sampled, str) else ""
    where += f" Classical embeddings: {_esc(classical)}." if isinstance(classical, str) else ""
    warning = _note(caveat) if isinstance(caveat, str) else ""
    return warning + (
        f"<div class='wide'><table>{head}</tr>{body}</table></div><p class='sub'>{UNIT_NOTE} "
        f"The learned encoder should beat both baselines.{where}</p>"
    )


def _other_evaluations_sections(root: Path, config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One section per `selfsup evaluate RUN --data SOURCE` (evaluations/*.json), beside the
    run's own evaluation, which those never overwrite."""
    return [
        (f"evaluation-{i}", f"Evaluation on {source}", _evaluation_html(results, config))
        for i, (source, results) in enumerate(other_evaluations(root).items(), 1)
    ]


def _row_titles(config: dict[str, Any]) -> dict[str, str]:
    """What the evaluation table calls each row, as the run's modality names them."""
    try:
        return TITLES | get_modality(source_modality(config["data"]["source"])).row_titles
    except (KeyError, TypeError, SelfsupError):
        return {}


def _environment_html(environment: Any) -> str:
    if not isinstance(environment, dict):
        return _note("no environment.json in this run")
    return _key_value_table(environment)


def _page(
    root: Path,
    config: dict[str, Any],
    records: list[dict[str, Any]],
    sections: list[tuple[str, str, str]],
    seconds: float,
) -> str:
    flat = flatten(config, whole=(), keep_empty=True)
    facts = [
        ("method", flat.get("method.name")),
        ("data", flat.get("data.source")),
        ("encoder", _encoder_fact(root)),
    ]
    train = [r for r in records if r.get("kind", "train") == "train"]
    if train:
        last = train[-1]
        facts += [("steps", last.get("step")), ("epochs", _round(last.get("epoch")))]
    summary = " · ".join(f"{_esc(k)} <b>{_esc(v)}</b>" for k, v in facts if v is not None)
    summary += _supervised_badge(flat.get("method.name"))
    nav = " | ".join(f'<a href="#{key}">{_esc(title)}</a>' for key, title, _ in sections)
    body = "".join(
        f'<section id="{key}"><h2>{_esc(title)}</h2>{content}</section>'
        for key, title, content in sections
    )
    title = f"selfsup report: {root.resolve().name}"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1><p class='sub'>{summary}</p><p>{nav}</p>{body}"
        f"<p class='sub'>Written by selfsup on {_esc(stamp)} in {seconds:.1f} s from "
        f"<code>{_esc(root.resolve())}</code>.</p></body></html>\n"
    )


def _encoder_fact(root: Path) -> str | None:
    """The exported encoder in a few words, from encoder.json: an image backbone, a text
    model folder and its pooling, a series layout, or CLIP's two towers."""
    spec = (_read_json(root / "encoder.json") or {}).get("spec")
    return _describe_spec(spec) if isinstance(spec, dict) else None


def _describe_spec(spec: dict[str, Any]) -> str | None:
    if "image" in spec and "text" in spec:  # clip: two towers
        image, text = _describe_spec(spec["image"]), _describe_spec(spec["text"])
        return f"image {image} + text {text}"
    if "model" in spec:  # a transformers text model
        return (
            f"{Path(str(spec['model'])).name} ({spec.get('pooling', 'mean')} pooling, "
            f"max {spec.get('max_length')} tokens)"
        )
    if "width" in spec and "context" in spec:  # CLIP's byte-level text tower from scratch
        return f"scratch transformer ({spec.get('layers')} layers, width {spec['width']})"
    if "kernels" in spec and "context_dim" in spec:  # the series encoder (conv1d + GRU)
        return (
            f"series conv1d x{len(spec['kernels'])} + GRU ({spec['in_channels']} channels in, "
            f"context {spec['context_dim']})"
        )
    if "backbone" in spec:
        return str(spec["backbone"])
    return None


def _supervised_badge(name: Any) -> str:
    """A visible mark for a run whose method trains with human labels (`uses_labels`)."""
    if not is_supervised(str(name)):
        return ""
    return (
        " · <b class='supervised' style='background:#c0392b;color:#fff;padding:0 .4em'>"
        "SUPERVISED: trained with labels</b>"
    )


def _round(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


# ---------------------------------------------------------------- embeddings: map and samples


def _embedding_sections(
    root: Path, max_points: int, device: str
) -> tuple[str, list[tuple[str, str, str]], str | None]:
    """(map html, the modality's sample sections, why the run has no periodic evaluation if the
    data is the reason), or notes when the encoder or data is missing."""
    try:
        cfg = run_config(root)
        encoder = load(root, device=device)
        modality = get_modality(source_modality(cfg.data.source))
        data = run_evaluation_data(cfg, load_run_splits(cfg, root))
    except (SelfsupError, OSError) as err:
        return _note(f"no embeddings to show: {err}"), [], None
    queries = data.queries
    rng = np.random.default_rng(0)
    q_idx = subsample(len(queries), max_points, rng)
    part = queries.subset(torch.from_numpy(q_idx)) if len(q_idx) < len(queries) else queries
    rows = modality.tensors(part, encoder)
    feats = encode_rows(encoder, rows, modality.encoder_input, device=device).numpy()
    labels = None if part.labels is None else part.labels.numpy()
    embedding_map = _map_html(feats, labels, queries.classes, data.queries_from)
    augment = modality.augment(cfg, encoder.spec)
    sections = [
        (key, title, section_html(content))
        for key, title, content in modality.report_sections(
            encoder, data.bank, queries, augment, device
        )
    ]
    return embedding_map, sections, _no_online_reason(modality, data)


def _no_online_reason(modality: Any, data: Any) -> str | None:
    """Why the periodic check during training could measure nothing on this evaluation data
    (the text run without scored pairs), or None when it could."""
    if usable(modality.online_protocols, data.available()):
        return None
    wanted = sorted({need for n in modality.online_protocols for need in PROTOCOLS[n].needs})
    words = {
        "label": "labels",
        "pairs": "sentence pairs with gold scores",
        "retrieval": "(query, document) pairs",
        "captions": "captions",
    }
    return (
        f"no evaluation data for this {modality.name} run: {data.queries_from} has no "
        f"{' or '.join(words.get(w, w) for w in wanted)} for the periodic check "
        f"({', '.join(modality.online_protocols)}), so nothing measured the encoder while it "
        "trained; give an evaluation set with --eval-data SOURCE (text: sts:DIR, e.g. STS-B)"
    )


def project_2d(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """2-D coordinates of `features` for a map: UMAP when installed, else t-SNE (scikit-learn)."""
    x = np.asarray(features, dtype=np.float32)
    x = unit_rows(x)
    try:
        import umap  # optional, and heavy: imported only when a map is drawn
    except ImportError:
        umap = None
    if umap is not None:
        numba_without_openmp()
        reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, len(x) - 1))
        return reducer.fit_transform(x), "UMAP"
    from sklearn.decomposition import PCA  # lazily (and the next two): only a map needs them
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    steps = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    tsne = TSNE(
        n_components=2,
        perplexity=float(min(30.0, max(2.0, (len(x) - 1) / 3))),
        init="pca",
        learning_rate="auto",
        random_state=seed,
        **{steps: 500},
    )
    # One thread: on a busy 2-core machine, OpenMP's spinning threads made Barnes-Hut t-SNE
    # 3 to 9 times slower (2,000 points: 8 s on one thread, 26 s on two).
    with threadpool_limits(1):
        if x.shape[1] > 50 and len(x) > 50:
            x = PCA(50, random_state=seed).fit_transform(x)
        return tsne.fit_transform(x), "t-SNE"


def _map_html(
    feats: np.ndarray, labels: np.ndarray | None, classes: list[str] | None, name: str
) -> str:
    from matplotlib import colormaps  # lazily: only a report draws
    from matplotlib.figure import Figure

    if len(feats) < 5:
        return _note(f"only {len(feats)} test embeddings: too few for a map")
    coords, how = project_2d(feats)
    fig = Figure(figsize=(7.5, 6.5))
    ax = fig.add_subplot()
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=6, c="#1f77b4", alpha=0.7, linewidths=0)
        text = _note("the data has no labels: points are not coloured")
    else:
        values = np.unique(labels)
        cmap = colormaps["tab10" if len(values) <= 10 else "tab20"]
        for i, y in enumerate(values):
            at = labels == y
            label = classes[y] if classes and 0 <= y < len(classes) else str(y)
            color = cmap(i % cmap.N) if len(values) <= 20 else cmap(i / len(values))
            ax.scatter(*coords[at].T, s=6, color=color, alpha=0.8, linewidths=0, label=label)
        if len(values) <= 20:
            ax.legend(markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
        text = ""
    ax.set_xticks([])
    ax.set_yticks([])
    caption = f"{how} of {len(feats)} test embeddings ({name})"
    figure = _figure_html(fig, f"{how} map of the test embeddings")
    return f"<p class='sub'>{_esc(caption)}.</p>{figure}{text}"


# ---------------------------------------------------------------- command line


def _run_report(args: argparse.Namespace) -> int:
    path = write_report(args.run, max_points=args.max_points, device=args.device)
    print(f"report written to {path}")
    return 0


def add_cli(subparsers: Any) -> None:
    """Add `selfsup report RUN` to the command line's subparsers."""
    p = subparsers.add_parser("report", help="write a run's HTML report (report.html)")
    p.add_argument("run", help="run directory made by `selfsup pretrain`")
    p.add_argument(
        "--max-points",
        type=int,
        default=2000,
        help="test embeddings in the 2-D map (a seeded subsample; default 2000)",
    )
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=_run_report)
