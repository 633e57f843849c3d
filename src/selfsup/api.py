"""The Python API in four calls: pretrain, load, embed, evaluate (load and embed live in
`selfsup.serving`, which imports no torch for an ONNX export)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from selfsup.config import Config, apply_overrides
from selfsup.data.registry import source_modality
from selfsup.devices import resolve_device
from selfsup.errors import SelfsupError
from selfsup.evaluate.classical import check_classical_input
from selfsup.evaluate.registry import check_needs, parse_protocols
from selfsup.evaluate.store import evaluation_path, write_evaluation
from selfsup.evaluate.suite import evaluate_with_baselines, evaluation_data
from selfsup.export import SPEC
from selfsup.methods import get_method
from selfsup.modalities import get_modality
from selfsup.run import pretrain as _pretrain
from selfsup.run_data import load_run_splits, requested_protocols, run_config, run_evaluation_data
from selfsup.serving import embed as embed  # re-exported: search.py imports it from here
from selfsup.serving import load


def make_config(**overrides: Any) -> Config:
    """A Config from dotted keys written with double underscores or dots in a dict.

    `make_config(data__source="cifar10:/data", train__epochs=10)` or
    `make_config(**{"data.source": "cifar10:/data"})`.
    """
    return apply_overrides(Config(), _dotted(overrides))


def _dotted(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k.replace("__", "."): v for k, v in overrides.items()}


def pretrain(
    config: Config | None = None,
    out: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    **overrides: Any,
):
    """Train an encoder; return a `RunResult` (run_dir, encoder, evaluation).

    On resume, keyword overrides (`train__epochs=8`) are the settings to change, checked
    against the saved run.
    """
    cfg = config or Config()
    if overrides:
        cfg = apply_overrides(cfg, _dotted(overrides))
    return _pretrain(cfg, out, resume=resume, overwrite=overwrite, overrides=_dotted(overrides))


def analogy(run: str | Path | Any, a: str, b: str, c: str, k: int = 1) -> str | list:
    """a : b :: c : ? by 3CosAdd on a word-vector run (or loaded table): the word nearest to
    b - a + c, the three question words excluded; with k > 1 the k best (word, cosine)."""
    table = load(run) if isinstance(run, (str, Path)) else run
    if getattr(table, "kind", None) != "word-vectors":
        raise SelfsupError("analogy needs a word-vector run (method word2vec)")
    answers = table.analogy(a, b, c, k=k)
    return answers[0][0] if k == 1 else answers


def evaluate(
    run: str | Path,
    protocols: tuple[str, ...] | str | None = None,
    *,
    data: str | None = None,
    device: str = "cpu",
    baselines: str | bool | tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Evaluate a run's encoder beside the baselines; write the figures and return them.

    `protocols` default to the run's. On the run's own data the figures go to eval.json; `data`
    evaluates on another source (split 80/20 when it has no test split, as training splits its
    data) and writes evaluations/<source name>.json, leaving eval.json as it was
    (`selfsup.evaluate.store`). `baselines` replaces the run's `eval.baselines` (true, false or
    classical names such as "pca,isomap"), checked before any data is decoded.
    """
    cfg = run_config(run)
    if baselines is not None:
        cfg = apply_overrides(cfg, {"eval.baselines": baselines})
    torch_device = resolve_device(device)
    modality = get_modality(source_modality(cfg.data.source))
    check_classical_input(cfg.eval.baselines, modality, cfg.data.source)
    method_protocols = get_method(cfg.method.name).protocols
    names = (
        requested_protocols(cfg, modality, method_protocols)
        if protocols is None
        else parse_protocols(protocols)
    )
    encoder = load(run, device=torch_device)
    if data is not None:
        splits = load_run_splits(cfg, Path(run), source=data)
        eval_data = evaluation_data(splits, data, own=data == cfg.data.source)
    else:
        eval_data = run_evaluation_data(cfg, load_run_splits(cfg, Path(run)))
    if protocols is not None:
        check_needs(names, eval_data.available(), eval_data.queries_from, eval_data.withheld)
    augment = modality.augment(cfg, encoder.spec)
    try:
        results = evaluate_with_baselines(
            encoder, modality, eval_data, cfg, names, torch_device, augment, who=_who(run)
        )
    except KeyboardInterrupt:
        raise SelfsupError(
            f"evaluation interrupted; nothing was written. Run it again: selfsup evaluate {run}"
        ) from None
    if data is not None:
        results = {"data": data, **results}
    write_evaluation(evaluation_path(run, data), results)
    return results


def _who(run: str | Path) -> str:
    """The exported encoder of `run`, by the step encoder.json records (when it does)."""
    try:
        step = json.loads((Path(run) / SPEC).read_text()).get("step")
    except (OSError, ValueError):
        step = None
    return f"the encoder of {run}" + (f" (exported at step {step})" if step is not None else "")
