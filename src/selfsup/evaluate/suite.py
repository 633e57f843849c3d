"""Evaluation the way a run reports it: the learned encoder beside the encoder as it was before
training and the raw input, on held-out queries, by the protocols of the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from selfsup.config import Config
from selfsup.data.heldout import HELDOUT_FILE, MIN_SAMPLES, carve_evaluation_split
from selfsup.data.split import DataSplits, Split
from selfsup.embedding import encode_rows, mean_over_rows
from selfsup.errors import SelfsupError
from selfsup.evaluate.baselines import run_baselines
from selfsup.evaluate.classical import classical_names, classical_rows
from selfsup.evaluate.context import EncoderInputs, Features
from selfsup.evaluate.registry import PROTOCOLS, run_protocols, usable
from selfsup.methods import is_supervised
from selfsup.modalities import Modality
from selfsup.modalities.raw import sample_rows
from selfsup.models import build_encoder

ALIGNMENT_SAMPLES = 5000  # held-out samples seen in two augmented views for the alignment figure


@dataclass
class EvalData:
    """The bank (reference samples) and the queries (held-out samples scored), and where the
    queries came from, as the evaluation table says. `withheld` names what the data has but no
    protocol may use, with the reason: labels and captions when the queries are the bank (each
    query would find itself) or the pairs the encoder trained on."""

    bank: Split
    queries: Split
    queries_from: str
    withheld: dict[str, str] = field(default_factory=dict)

    def available(self) -> set[str]:
        """What the protocols can use: what the queries serve ("label" and "factors" only when
        the bank has them too), less `withheld`."""
        have = set(self.queries.serves)
        for bank_needs in ("label", "factors"):  # kNN reads the bank's annotations too
            if bank_needs not in self.bank.serves:
                have.discard(bank_needs)
        return have - set(self.withheld)

    def features(self, queries: torch.Tensor, bank: torch.Tensor | None, cfg: Config) -> Features:
        """One encoder's (or baseline's) features of queries and bank, with the data's labels
        and pairs and the kNN settings: what the protocols receive."""
        q = self.queries
        return Features(
            queries=queries,
            bank=bank,
            bank_labels=self.bank.labels,
            query_labels=q.labels,
            pairs=q.pairs,
            retrieval=q.retrieval,
            bank_factors=self.bank.factors,
            query_factors=q.factors,
            knn_k=cfg.eval.knn_k,
            knn_t=cfg.eval.knn_t,
        )

    def skipped(self, names: tuple[str, ...]) -> str | None:
        """A line naming the protocols of `names` that `withheld` rules out, and why."""
        out = [n for n in names if PROTOCOLS[n].needs & self.withheld.keys()]
        if not out:
            return None
        needs = sorted({k for n in out for k in PROTOCOLS[n].needs & self.withheld.keys()})
        return f"{', '.join(out)} not run: " + "; ".join(self.withheld[k] for k in needs)


def evaluation_data(splits: DataSplits, source: str, *, own: bool = True) -> EvalData:
    """Bank = train split, queries = test split.

    Without a test split, data the run did not train on (`own=False`: `eval.data`, `selfsup
    evaluate --data`) is split as training splits it (`carve_evaluation_split`). The train split
    then serves as bank and queries only for protocols that compare queries with each other or
    with annotations (geometry, STS, retrieval): labels and captions are withheld, with the
    reason, because each query would find itself in the bank, or its own training pair.
    """
    if splits.test is None and not own:
        splits = carve_evaluation_split(splits)
    if splits.test is not None:
        how = splits.test_from or "its test split"
        return EvalData(splits.train, splits.test, f"{source}: {how}")
    train = splits.train
    if len(train) < MIN_SAMPLES:
        why = (
            f"{source} holds {len(train)} samples, too few to hold out queries (at least "
            f"{MIN_SAMPLES}): give a source with a test split or more samples"
        )
    else:
        why = (
            f"{source} is the run's training data and the run recorded no held-out split "
            f"({HELDOUT_FILE}): evaluate on other data with --data SOURCE"
        )
    withheld = {}
    for held in ("label", "factors"):
        if held in train.serves:
            withheld[held] = f"with no held-out queries each query would find itself ({why})"
    if own and "captions" in train.serves:
        withheld["captions"] = f"the only pairs are the ones the encoder trained on ({why})"
    where = "the training samples (no held-out split)" if own else "all its samples (no test split)"
    return EvalData(train, train, f"{source}: {where}", withheld)


def encoder_features(
    encoder: nn.Module,
    modality: Modality,
    data: EvalData,
    names: tuple[str, ...],
    cfg: Config,
    device: torch.device | str,
    augment: Any = None,
) -> Features:
    """Clean features of bank (when a protocol needs labels) and queries, and, for geometry
    with an augmentation, two augmented views of up to 5000 queries for alignment."""

    def embed(part: Split, to_input: Any = modality.encoder_input) -> torch.Tensor:
        rows = modality.tensors(part, encoder)
        return encode_rows(encoder, rows, to_input, device=device).to(device)

    needs_bank = any(PROTOCOLS[n].needs & {"label", "factors"} for n in names)
    queries = embed(data.queries)  # before the bank, as always
    features = data.features(queries, embed(data.bank) if needs_bank else None, cfg)
    if any(PROTOCOLS[n].uses_encoder for n in names):
        e = cfg.eval
        features.model = EncoderInputs(
            encoder=encoder,
            bank=modality.tensors(data.bank, encoder),
            queries=modality.tensors(data.queries, encoder),
            to_input=modality.encoder_input,
            device=device,
            fraction=e.finetune_fraction,
            epochs=e.finetune_epochs,
            lr=e.finetune_lr,
            batch_size=e.finetune_batch_size,
            llrd=e.finetune_llrd,
            seed=cfg.train.seed,
        )
    features.extra = modality.extra_features(encoder, data, cfg, device)
    if augment is not None and "geometry" in names:
        subset = data.queries
        if len(subset) > ALIGNMENT_SAMPLES:
            gen = torch.Generator().manual_seed(0)
            subset = subset.subset(torch.randperm(len(subset), generator=gen)[:ALIGNMENT_SAMPLES])

        def augmented(batch: dict[str, torch.Tensor]) -> Any:
            return augment(modality.encoder_input(batch))

        features.views = (embed(subset, augmented), embed(subset, augmented))
    return features


def model_figures(
    encoder: nn.Module, modality: Modality, data: EvalData, device: torch.device | str
) -> dict[str, float]:
    """The encoder's own figures on the held-out queries, averaged over them: what an encoder
    that is a density model measures of itself (`heldout_figures(model_input) -> {name: (B,)}`,
    NADE's negative log-likelihood in nats per image); {} for an encoder without the method."""
    figures = getattr(encoder, "heldout_figures", None)
    if figures is None:
        return {}
    rows = modality.tensors(data.queries, encoder)
    was_training = encoder.training
    encoder.eval()
    own = mean_over_rows(lambda batch: figures(modality.encoder_input(batch)), rows, device)
    encoder.train(was_training)
    return own


def evaluate_with_baselines(
    encoder: nn.Module,
    modality: Modality,
    data: EvalData,
    cfg: Config,
    names: tuple[str, ...],
    device: torch.device | str = "cpu",
    augment: Any = None,
    learned: dict[str, float] | None = None,
    who: str = "the learned encoder",
) -> dict[str, Any]:
    """eval.json: one row of figures per encoder (learned, before training, raw input) and the
    line saying where the queries came from. Protocols whose needs the data lacks are skipped
    (those it has but may not use are named in "skipped", with the reason). `learned`: the
    learned encoder's row when the caller has measured it already; `who` names that encoder in
    errors (the run and the step)."""
    skipped = data.skipped(tuple(names))
    names = usable(names, data.available())
    results: dict[str, Any] = {"queries": data.queries_from}
    if skipped:
        results["skipped"] = skipped
    if is_supervised(cfg.method.name):
        results["note"] = (
            f"supervised: the learned encoder was trained with the labels ({cfg.method.name})"
        )
    if learned is None:
        learned = run_protocols(
            encoder_features(encoder, modality, data, names, cfg, device, augment), names, who
        ) | model_figures(encoder, modality, data, device)
    results["selfsup"] = learned
    if not cfg.eval.baselines:
        return results
    try:
        with torch.random.fork_rng():
            torch.manual_seed(cfg.train.seed)
            initial = build_encoder(encoder.spec).to(device)
    except SelfsupError as err:  # e.g. a text model folder that has moved since training
        results[modality.initial_row] = {}
        print(f"selfsup: the {modality.initial_row} baseline is skipped: {err}")
    else:
        # Protocols that train the encoder report their from-scratch figure in the selfsup row
        # (e.g. finetune_scratch_top1): the baseline rows skip them.
        frozen = tuple(n for n in names if not PROTOCOLS[n].uses_encoder)
        results[modality.initial_row] = run_protocols(
            encoder_features(initial, modality, data, frozen, cfg, device, augment),
            frozen,
            f"the {modality.initial_row!r} baseline ({modality.row_titles[modality.initial_row]})",
        ) | model_figures(initial, modality, data, device)
    raw_names = tuple(n for n in names if n != "geometry" and not PROTOCOLS[n].uses_encoder)
    if raw_names:
        needs_bank = any(PROTOCOLS[n].needs & {"label", "factors"} for n in raw_names)
        raw, sampled = raw_baseline_data(data, cfg.eval.raw_bank_limit)
        if sampled:
            results["raw_sample"] = f"{modality.raw_row}: {sampled}"
        bank, queries = modality.raw_features(raw.bank, raw.queries, with_bank=needs_bank)
        features = raw.features(queries, bank, cfg)
        features.extra = modality.raw_extra_features(raw)
        results[modality.raw_row] = run_protocols(
            features,
            raw_names,
            f"the {modality.raw_row!r} baseline ({modality.row_titles[modality.raw_row]})",
        )
    extra, sampled = run_baselines(modality.extra_baselines, data, cfg, names)
    results.update(extra)
    if sampled:
        results["raw_sample"] = "; ".join(filter(None, (results.get("raw_sample"), sampled)))
    classical = classical_names(cfg.eval.baselines)
    if classical:  # PCA, MDS, Isomap, LLE of the raw row's features (eval.baselines=pca,...)
        raw, sampled = raw_baseline_data(data, cfg.eval.raw_bank_limit)
        rows, line = classical_rows(classical, modality, raw, cfg, names, encoder.out_dim)
        results.update(rows)
        if line:
            results["classical"] = line
        if sampled and "raw_sample" not in results:
            results["raw_sample"] = f"classical rows: {sampled}"
    return results


def raw_baseline_data(data: EvalData, limit: int, seed: int = 0) -> tuple[EvalData, str | None]:
    """The bank and queries of the raw-input baseline: each as it is up to `limit` rows, else a
    seeded sample of `limit` rows, stratified by class when labelled (its features are dense
    floats of the input's size: a million 96 px images would be 110 GB), with the line that
    says so (None when nothing was sampled)."""
    said: list[str] = []

    def bounded(part: Split, what: str) -> Split:
        if len(part) <= limit:
            return part
        how = ", stratified by class" if part.labels is not None else ""
        said.append(f"{what}: a seeded sample of {limit:,} of its {len(part):,} rows{how}")
        return part.subset(sample_rows(len(part), limit, part.labels, seed))

    same = data.queries is data.bank
    bank = bounded(data.bank, "bank and queries" if same else "bank")
    queries = bank if same else bounded(data.queries, "queries")
    if not said:
        return data, None
    line = "; ".join(said) + f" (eval.raw_bank_limit {limit:,})"
    return EvalData(bank, queries, data.queries_from, dict(data.withheld)), line


def online_evaluation(
    encoder: nn.Module,
    modality: Modality,
    data: EvalData,
    cfg: Config,
    device: torch.device | str,
    augment: Any = None,
    who: str = "the learned encoder",
) -> dict[str, float]:
    """The periodic check during training: the modality's online protocols (kNN and the
    collapse figures for images, STS for text) on clean features of the held-out queries."""
    names = usable(modality.online_protocols, data.available())
    own = model_figures(encoder, modality, data, device)
    if not names:
        return own
    features = encoder_features(encoder, modality, data, names, cfg, device, augment)
    return run_protocols(features, names, who) | own


def final_and_online(
    encoder: nn.Module,
    modality: Modality,
    data: EvalData,
    cfg: Config,
    names: tuple[str, ...],
    device: torch.device | str,
    augment: Any = None,
    who: str = "the learned encoder",
) -> tuple[dict[str, float], dict[str, float]]:
    """The learned encoder's figures for the final protocols `names` and for the modality's
    online ones (the training curve's last point), from one pass over the held-out data: the
    features of 60,000 CIFAR-10 images take a minute on a CPU, too long to compute twice."""
    final = usable(names, data.available())
    online = usable(modality.online_protocols, data.available())
    both = tuple(dict.fromkeys(final + online))
    own = model_figures(encoder, modality, data, device)
    if not both:
        return own, own
    features = encoder_features(encoder, modality, data, both, cfg, device, augment)
    figures = {name: run_protocols(features, (name,), who) for name in both}
    return (
        {k: v for name in final for k, v in figures[name].items()} | own,
        {k: v for name in online for k, v in figures[name].items()} | own,
    )


def format_table(results: dict[str, Any]) -> str:
    """A plain-text table: one row per encoder, one column per figure, then the queries' source.
    Every figure follows `selfsup.units`: percentages (their column says "(%)") or plain
    numbers."""
    from selfsup.units import column, format_figure

    rows = {name: row for name, row in results.items() if isinstance(row, dict)}
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    if not keys:
        said = [f"{k}: {results[k]}" for k in ("queries", "skipped", "note") if k in results]
        return "\n".join(["no evaluation figures", *said])
    widths = [max(len(column(k)), 9) + 2 for k in keys]
    first = max(len(name) for name in rows) + 2
    head = "".ljust(first) + "".join(column(k).rjust(w) for k, w in zip(keys, widths, strict=True))
    lines = [head]
    for name, row in rows.items():
        cells = [format_figure(k, row.get(k)).rjust(w) for k, w in zip(keys, widths, strict=True)]
        lines.append(name.ljust(first) + "".join(cells))
    if "queries" in results:
        lines.append(f"queries: {results['queries']}")
    if "skipped" in results:
        lines.append(f"skipped: {results['skipped']}")
    if "note" in results:
        lines.append(f"note: {results['note']}")
    if "caveat" in results:
        lines.append(f"caveat: {results['caveat']}")
    if "raw_sample" in results:
        lines.append(f"sampled: {results['raw_sample']}")
    if "classical" in results:
        lines.append(f"classical: {results['classical']}")
    return "\n".join(lines)
