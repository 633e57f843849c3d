"""The model card (`README.md`) written beside every export, in the Hugging Face layout: YAML
front matter, then the method and its paper, the data, how it was trained (command, time,
hardware), the evaluation table of `eval.json` (learned vs the baselines, every figure as the
console table shows it), how to load this export, and the licence, left for the user.

Everything comes from the run directory (config.json, environment.json, heldout.json,
eval.json, encoder.json); what an older run did not record is said to be "not recorded"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfsup.errors import SelfsupError

CARD = "README.md"
NOT_RECORDED = "not recorded"
# the library whose loader reads each format: the hub's `library_name` (its "use this model")
LIBRARY = {"sentence-transformers": "sentence-transformers", "timm": "timm"}
# encoder kind -> modality, when the run's data source cannot say (a moved folder)
KIND_MODALITY = {"image": "image", "text": "text", "word-vectors": "text", "clip": "pair"}


def write_model_card(run: Path, folder: Path, format: str, encoder: Any, module: Any) -> Path:
    """Write `folder/README.md` for the export of `run`'s `encoder` in `format` (whose module
    may give `load_snippet(folder, encoder)` and `card_notes(encoder)`)."""
    facts = _RunFacts(run, encoder)
    parts = [
        _front_matter(facts, format),
        f"# {facts.title}\n\n{_intro(facts, format, folder)}",
        _method(facts),
        _data(facts),
        _training(facts),
        _evaluation(facts),
        _loading(folder, format, encoder, module),
        "## Licence\n\nNot set: `license:` in the front matter above is left for you to fill in "
        "(mind the licence of the training data and of the model this run started from).",
    ]
    path = folder / CARD
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return path


class _RunFacts:
    """What the run directory records, read once; None where a file or a field is missing."""

    def __init__(self, run: Path, encoder: Any):
        self.run, self.encoder = run, encoder
        self.config = _json(run / "config.json").get("config")
        self.environment = _json(run / "environment.json")
        self.evaluation = _json(run / "eval.json")
        self.heldout = _json(run / "heldout.json")
        self.exported = _json(run / "encoder.json")
        method = (self.config or {}).get("method", {}).get("name")
        self.method = _method_class(method)
        self.method_name = method or NOT_RECORDED
        self.source = (self.config or {}).get("data", {}).get("source")
        self.modality = _modality(self.source, encoder)

    @property
    def title(self) -> str:
        what = getattr(self.method, "name", None) or "selfsup"
        return f"{what} {self.modality or ''} encoder (selfsup run `{self.run.name}`)".replace(
            "  ", " "
        )


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _method_class(name: str | None) -> Any:
    if not name:
        return None
    from selfsup.methods import get_method

    try:
        return get_method(name)
    except SelfsupError:  # a method this selfsup no longer has
        return None


def _modality(source: str | None, encoder: Any) -> str | None:
    if source:
        from selfsup.data.registry import source_modality

        try:
            return source_modality(source)
        except (SelfsupError, OSError):
            pass
    return KIND_MODALITY.get(encoder.kind)


def _yaml_str(value: str) -> str:
    """A YAML scalar that stays a string (JSON strings are YAML)."""
    return json.dumps(value)


def _front_matter(facts: _RunFacts, format: str) -> str:
    tags = ["self-supervised", "selfsup"]
    if facts.method is not None:
        tags.append(facts.method.name)
    if facts.modality:
        tags.append(facts.modality)
    if format not in tags:
        tags.append(format)
    lines = [
        "---",
        f"library_name: {LIBRARY.get(format, 'selfsup')}",
        "license:  # left for you: the licence of these weights (mind the training data's)",
        "tags:",
        *(f"- {_yaml_str(t)}" for t in dict.fromkeys(tags)),
    ]
    if facts.source and ":" not in facts.source:  # a named source (digits), not a local path
        lines += ["datasets:", f"- {_yaml_str(facts.source)}"]
    lines += ["pipeline_tag: feature-extraction", "---"]
    return "\n".join(lines)


def _intro(facts: _RunFacts, format: str, folder: Path) -> str:
    encoder = facts.encoder
    normal = bool(getattr(encoder.spec, "normalize", False))
    step = facts.exported.get("step")
    which = facts.exported.get("exported")
    return (
        f"The encoder of selfsup run `{facts.run.name}`"
        + (f" at training step {step}" if step is not None else "")
        + f", exported with `selfsup export {facts.run.name} --format {format}`"
        + (f"; the run saved its {which}" if which else "")
        + f". Kind `{encoder.kind}`: it maps each input to a vector of {encoder.out_dim} numbers"
        + (" of unit length" if normal else "")
        + "."
    )


def _method(facts: _RunFacts) -> str:
    m = facts.method
    if m is None:
        return f"## Method\n\n{facts.method_name} (the run's config.json names no known method)."
    lines = [
        "## Method",
        "",
        f"**{m.name}** ({m.family}): {m.summary.rstrip('.')}.",
        "",
        f"Paper: {m.paper}.",
    ]
    if getattr(m, "uses_labels", False):
        lines += ["", "Supervised: this method trained with the data's labels."]
    lines += ["", "Encoder: " + _spec_line(facts.encoder.spec)]
    return "\n".join(lines)


def _spec_line(spec: Any) -> str:
    return ", ".join(f"{k} {v}" for k, v in spec.to_dict().items() if v not in ((), None, ""))


def _data(facts: _RunFacts) -> str:
    env, cfg = facts.environment, facts.config or {}
    lines = ["## Data", ""]
    lines.append(f"- Source: `{facts.source}`" if facts.source else f"- Source: {NOT_RECORDED}")
    samples = env.get("train_samples")
    lines.append(
        f"- Training samples: {samples:,}"
        if isinstance(samples, int)
        else f"- Training samples: {NOT_RECORDED}"
    )
    lines.append(f"- Held-out split: {_heldout(facts)}")
    eval_data = cfg.get("eval", {}).get("data")
    if eval_data:
        lines.append(f"- Evaluation data: `{eval_data}`")
    queries = env.get("eval_queries")
    if isinstance(queries, int):
        lines.append(f"- Evaluation queries: {queries:,}")
    return "\n".join(lines)


def _heldout(facts: _RunFacts) -> str:
    record, queries = facts.heldout, facts.evaluation.get("queries")
    if record.get("test") is not None:
        n, held = record.get("count"), len(record["test"])
        return (
            f"{held:,} of the source's {n:,} samples ({100 * record.get('fraction', 0):.0f} %, "
            f"seed {record.get('seed')}) were held out before training and never trained on; "
            "they are the evaluation's queries (their positions: the run's heldout.json)"
        )
    if record.get("rule"):
        return f"held out by rule ({record['rule']}), recorded in the run's heldout.json"
    if queries:
        return f"none carved from training; the evaluation's queries are {queries}"
    return NOT_RECORDED


def _training(facts: _RunFacts) -> str:
    env, cfg = facts.environment, facts.config or {}
    train = cfg.get("train", {})
    command = env.get("command")
    lines = ["## Training", "", "Command:", "", "```", command or NOT_RECORDED, "```", ""]
    if train:
        optim = cfg.get("optim", {})
        lines.append(
            f"- Schedule: {train.get('epochs')} epochs, batch {train.get('batch_size')}, "
            f"seed {train.get('seed')}; optimiser {optim.get('name')} (lr {optim.get('lr')}, "
            f"weight decay {optim.get('weight_decay')}); the run's config.json has every setting"
        )
    steps, wall = env.get("train_seconds"), env.get("train_wall_seconds")
    if isinstance(steps, (int, float)):
        lines.append(
            f"- Training time: {_duration(steps)} in training steps"
            + (
                f" ({_duration(wall)} wall clock of the training loop, evaluations included)"
                if isinstance(wall, (int, float))
                else ""
            )
        )
    else:
        lines.append(f"- Training time: {NOT_RECORDED}")
    lines.append(f"- Hardware: {_hardware(env)}")
    versions = [f"{k} {env[k]}" for k in ("selfsup", "torch", "python") if env.get(k)]
    if versions:
        lines.append(f"- Software: {', '.join(versions)}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _hardware(env: dict[str, Any]) -> str:
    if not env:
        return NOT_RECORDED
    parts = []
    if env.get("gpu"):
        parts.append(f"GPU {env['gpu']}")
    elif "gpu" not in env and env.get("device") not in (None, "cpu"):
        parts.append(f"device {env['device']}")  # runs before `gpu` was recorded
    parts.append(f"CPU {env['cpu']}" if env.get("cpu") else f"CPU model {NOT_RECORDED}")
    if env.get("cpu_threads"):
        parts.append(f"CPU threads: {env['cpu_threads']}")
    if env.get("world_size", 1) > 1:
        parts.append(f"{env['world_size']} processes")
    if env.get("autocast"):
        parts.append(f"autocast {env['autocast']}")
    return ", ".join(parts)


def _evaluation(facts: _RunFacts) -> str:
    """eval.json as a Markdown table: one row per encoder (learned, and each baseline), every
    figure in the column and format `selfsup.units` gives it, as the console table."""
    from selfsup.units import UNIT_NOTE, column, format_figure

    results = facts.evaluation
    rows = {name: row for name, row in results.items() if isinstance(row, dict)}
    head = ["## Evaluation", ""]
    if not rows:
        return "\n".join([*head, f"{NOT_RECORDED}: the run has no eval.json (not evaluated)."])
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    titles = _row_titles(facts.modality)
    lines = [
        *head,
        "On the held-out queries, the learned encoder beside the baselines (eval.json):",
        "",
        "| encoder | " + " | ".join(column(k) for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for name, row in rows.items():
        title = f"`{name}`: {titles[name]}" if name in titles else f"`{name}`"
        lines.append(
            f"| {title} | " + " | ".join(format_figure(k, row.get(k)) for k in keys) + " |"
        )
    lines += ["", UNIT_NOTE]
    for key in ("queries", "skipped", "note", "caveat", "raw_sample", "classical"):
        if key in results:
            lines.append(f"\n{key.replace('_', ' ').capitalize()}: {results[key]}")
    return "\n".join(lines)


def _row_titles(modality: str | None) -> dict[str, str]:
    if not modality:
        return {}
    from selfsup.modalities import get_modality

    try:
        return dict(get_modality(modality).row_titles)
    except SelfsupError:
        return {}


def _loading(folder: Path, format: str, encoder: Any, module: Any) -> str:
    lines = ["## How to load this export", ""]
    notes = getattr(module, "card_notes", None)
    for note in notes(encoder) if notes else []:
        lines += [note, ""]
    snippet = getattr(module, "load_snippet", None)
    if snippet is not None:
        code = snippet(str(folder), encoder)
    elif format == "selfsup":
        code = (
            "import selfsup\n\n"
            f'encoder = selfsup.load("{folder}")\n'
            "embeddings = selfsup.embed(encoder, inputs)  # images or sentences, as a run takes"
        )
    else:
        return "\n".join([*lines, f"See docs/export.md, section on `--format {format}`."])
    lang = "python"
    return "\n".join([*lines, f"```{lang}", code, "```", "", f"(`{folder}`: this folder.)"])
