"""`--format onnx`: the encoder as ONNX graphs that onnxruntime runs without torch or selfsup.

Each encoder kind is wrapped in a small module taking the ONNX contract's inputs (images
`pixels` float (N, C, H, W) in [0, 1], series `series` float (N, C, T), text `input_ids` and
`attention_mask` int64 (N, L)) and giving `embedding` float32 (N, D); the graph does the
encoder's own normalisation. The preprocessing it expects and the spec go into the graph's
metadata_props. CLIP writes two graphs (image.onnx, text.onnx); text kinds save their tokenizer
in `tokenizer/` beside the graph. Every graph is checked with onnxruntime against torch before
the export counts as written.

Exporter: torch's TorchScript-based exporter (`dynamo=False`) first. The dynamo exporter
(torch.export) writes a BERT graph that onnxruntime refuses to load (its embedding lookup's value
is named `embedding`, as the contract's output) and took 2-7x longer per graph; the traced
graphs match torch within 1e-5 at other batch sizes and lengths for every kind but those below
(tests/exports/test_onnx_export.py). Where the tracer has no ONNX form for an op (adaptive
average pooling to a size that does not divide the input's: the VAE encoder, AdaIN's content
grid), or its graph does not run as torch does at other shapes (nn.MultiheadAttention's traced
shapes are frozen: the scratch text towers), the graph comes from torch.export instead, its
value `embedding` renamed. Either way `write` runs the graph with onnxruntime against torch on
other shapes than the traced ones and keeps it only when they agree. torch marks the
TorchScript exporter deprecated; that notice is silenced here.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.exports.formats import ExportOptions

GRAPH = "model.onnx"
OUTPUT = "embedding"
_PENDING = "selfsup_embedding"  # the dynamo exporter's output until renamed to OUTPUT
CLIP_GRAPHS = ("image.onnx", "text.onnx")
TOKENIZER = "tokenizer"
FORMAT_TAG = "selfsup-onnx/1"
RESIZE_RULE = "shorter side, centre crop"
# The opsets --opset accepts: those the TorchScript exporter writes (its default is 20 in torch
# 2.14). The graphs that need torch.export (see above) come at 18 or later, or 17 where onnx's
# version converter manages; a graph that cannot be written at the opset asked is refused.
MIN_OPSET, MAX_OPSET = 14, 20
# Largest |onnxruntime - torch| the check in `write` accepts, times max(1, max |embedding|):
# fp32 graphs agree to about 1e-6 of that (tests assert 1e-4 absolute on small encoders);
# fp16 graphs (float16 weights and activations, float32 inputs and output) to about 1e-3
# (docs/export.md). Relative, as a deep network's embeddings reach 100 or more.
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2

IMAGE_KINDS = ("image", "multiview", "cyclegan", "rbm", "nade", "mahalanobis", "cswm")
SERIES_KINDS = ("series", "ts2vec", "tstcc")
TEXT_KINDS = ("text", "text-scratch", "text-words")


@dataclass
class Graph:
    """One ONNX graph to write: its file, the wrapper traced, example inputs and what goes
    into the metadata."""

    filename: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]  # traced
    probe: dict[str, torch.Tensor]  # checked: another batch size (and length) than `inputs`
    dynamic: dict[str, dict[int, str]]
    modality: str
    preprocess: dict[str, Any]
    out_dim: int
    tokenizer: Any = None  # a transformers fast tokenizer saved into tokenizer/
    extra: dict[str, str] = field(default_factory=dict)  # further metadata_props


class _Embed(nn.Module):
    """`embedding = encoder(x)` for one tensor input (images or series): the encoder's forward
    already normalises its input."""

    def __init__(self, encoder: nn.Module, project: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.project = project

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.encoder(x)
        return (out if self.project is None else self.project(out)).float()


class _EmbedTokens(nn.Module):
    """`embedding` of token ids and mask through a text encoder (and CLIP's projection).

    The encoder's `forward_features` drops all-padding columns with a data-dependent slice a
    trace would freeze; this computes the same token states on every column (padding columns
    are masked out of attention and pooling, so the result is the same)."""

    def __init__(self, encoder: nn.Module, project: nn.Module | None = None):
        super().__init__()
        self.encoder = encoder
        self.project = project

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        if enc.kind == "text":
            first = enc.pooling.needs_first_layer
            out = enc.model(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=first
            )
            features = {"token_states": out.last_hidden_state, "attention_mask": attention_mask}
            if first:
                features["first_layer_states"] = out.hidden_states[1]
        else:  # text-scratch / text-words: causal, so padding after the end token is unseen
            length = input_ids.shape[1]
            x = enc.token_embedding(input_ids) + enc.position_embedding[:length]
            causal = torch.triu(torch.full((length, length), float("-inf"), dtype=x.dtype), 1)
            states = enc.final_norm(enc.transformer(x, mask=causal, is_causal=True))
            features = {"token_states": states, "attention_mask": attention_mask}
        pooled = enc.pool(features)
        return (pooled if self.project is None else self.project(pooled)).float()


def _refused(kind: str, why: str, encoder: Any) -> SelfsupError:
    """The one error for an encoder kind ONNX cannot take, naming the formats that do."""
    takers = _formats_that_take(encoder)
    return SelfsupError(
        f"--format onnx cannot export a {kind!r} encoder: {why}. "
        + (f"Export it with --format {' or --format '.join(takers)}" if takers else "")
    )


def _formats_that_take(encoder: Any) -> list[str]:
    """The other export formats whose check accepts this encoder (installed ones only)."""
    from selfsup.exports.formats import FORMATS

    takers = []
    for name, fmt in FORMATS.items():
        if name == "onnx":
            continue
        try:
            fmt.load().check(encoder, ExportOptions())
        except (SelfsupError, ImportError):
            continue
        takers.append(name)
    return takers


def _image_input(encoder: Any) -> tuple[int, tuple[int, int], list[float], list[float], dict]:
    """(channels, (H, W), mean, std, notes) of the pixels an image-like encoder's graph takes;
    mean and std are what the graph subtracts and divides by (0 and 1 when it does not)."""
    kind, spec = encoder.kind, encoder.spec
    notes: dict[str, Any] = {}
    if kind == "mahalanobis" and encoder.base is not None:
        if _modality(encoder.base) != "image":
            raise _refused(kind, "its frozen base encoder does not read images", encoder)
        return _image_input(encoder.base)
    channels = int(spec.in_channels)
    size = spec.image_size
    height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    mean: list[float] = [0.0] * channels
    std: list[float] = [1.0] * channels
    if kind in ("image", "multiview", "mahalanobis"):
        mean, std = [float(v) for v in spec.mean], [float(v) for v in spec.std]
    if kind == "image" and spec.lightness:
        notes["colour"] = "the graph reads CIE Lab lightness L / 100 of the RGB input"
    if kind == "multiview" and spec.split == "lab":
        mean, std = (
            [float(v) for v in encoder.mean.flatten()],
            [float(v) for v in encoder.std.flatten()],
        )
        notes["colour"] = "the graph converts RGB to CIE Lab, then standardises by mean/std"
    if kind == "cyclegan":
        mean, std = [0.5] * channels, [0.5] * channels  # to [-1, 1], the generators' range
    if kind in ("rbm", "nade"):
        notes["binarise"] = "a pixel is on when above 0.5"
    return channels, (height, width), mean, std, notes


def _modality(encoder: Any) -> str:
    kind = encoder.kind
    if kind == "adain":
        return str(encoder.spec.modality)
    if kind in IMAGE_KINDS or kind == "clip":
        return "image"
    if kind in SERIES_KINDS:
        return "series"
    if kind in TEXT_KINDS or kind == "word-vectors":
        return "text"
    raise _refused(kind, "this selfsup's ONNX export does not know that kind", encoder)


def _image_graph(encoder: Any, filename: str, project: nn.Module | None = None) -> Graph:
    channels, (height, width), mean, std, notes = _image_input(encoder)
    preprocess = {
        "input": "pixels",
        "image_size": [height, width],
        "channels": channels,
        "mean": mean,
        "std": std,
        "range": [0, 1],
        "resize": RESIZE_RULE,
        **notes,
    }
    generator = torch.Generator().manual_seed(0)
    example = torch.rand(2, channels, height, width, generator=generator)
    probe = torch.rand(3, channels, height, width, generator=generator)
    out_dim = project.out_features if project is not None else int(encoder.out_dim)
    return Graph(
        filename,
        _Embed(encoder, project),
        {"pixels": example},
        {"pixels": probe},
        {"pixels": {0: "batch"}},
        "image",
        preprocess,
        out_dim,
    )


def _series_graph(encoder: Any, filename: str) -> Graph:
    channels = int(encoder.spec.in_channels)
    min_steps = int(getattr(encoder.spec, "receptive_field", 1))
    generator = torch.Generator().manual_seed(0)
    steps = max(64, 2 * min_steps)
    example = torch.randn(2, channels, steps, generator=generator)
    probe = torch.randn(3, channels, steps + 7, generator=generator) * 2 + 1
    preprocess = {"input": "series", "channels": channels, "min_steps": min_steps}
    return Graph(
        filename,
        _Embed(encoder),
        {"series": example},
        {"series": probe},
        {"series": {0: "batch", 2: "steps"}},
        "series",
        preprocess,
        int(encoder.out_dim),
    )


def _text_graph(
    encoder: Any, filename: str, project: nn.Module | None = None, owner: Any = None
) -> Graph:
    """The graph of a text encoder (or of CLIP's text tower, `owner` the CLIP encoder)."""
    from selfsup.exports.onnx_tokenizers import export_tokenizer

    owner = owner if owner is not None else encoder
    tokenizer = export_tokenizer(encoder)
    if not getattr(tokenizer, "is_fast", False):
        which = "" if owner is encoder else " (its text tower's)"
        raise _refused(
            owner.kind,
            f"its tokenizer{which} ({type(tokenizer).__name__}) is not a fast tokenizer, so no "
            "tokenizer.json can be saved beside the graph",
            owner,
        )
    # Rows of unequal length: with every mask entry 1 a trace may drop the mask altogether.
    batch = encoder.preprocess(["a b c", "a"])
    probe = encoder.preprocess(["a longer sentence than the two of the trace", "two words", "x"])
    if bool(batch["attention_mask"].all()):
        raise SelfsupError("the tokenizer padded no row of the trace's example; cannot export")
    scratch = encoder.kind != "text"  # the byte or word tower: its context is its length limit
    preprocess = {
        "tokenizer": TOKENIZER,
        "max_length": int(encoder.spec.context if scratch else encoder.spec.max_length),
        "pooling": "last" if scratch else encoder.spec.pooling,
        "padding_side": str(getattr(tokenizer, "padding_side", "right")),
    }
    axes = {0: "batch", 1: "tokens"}
    out_dim = project.out_features if project is not None else int(encoder.out_dim)
    return Graph(
        filename,
        _EmbedTokens(encoder, project),
        {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
        {"input_ids": probe["input_ids"], "attention_mask": probe["attention_mask"]},
        {"input_ids": axes, "attention_mask": axes},
        "text",
        preprocess,
        out_dim,
        tokenizer=tokenizer,
    )


def plan(encoder: Any, options: ExportOptions) -> list[Graph]:
    """The graphs this encoder exports as, or one error saying why it cannot."""
    kind = encoder.kind
    if kind == "word-vectors":
        raise _refused(
            kind,
            "it is a lookup table over its own word vocabulary (a sentence is the average of "
            "its known words' vectors), not a network of tensor inputs",
            encoder,
        )
    if kind == "clip":
        if options.filename is not None:
            raise SelfsupError(
                f"a CLIP encoder exports two graphs ({' and '.join(CLIP_GRAPHS)}); give --out "
                f"a folder, not the file {options.filename}"
            )
        image = _image_graph(encoder.image, CLIP_GRAPHS[0], encoder.image_projection)
        text = _text_graph(encoder.text, CLIP_GRAPHS[1], encoder.text_projection, encoder)
        image.extra["selfsup.tower"], text.extra["selfsup.tower"] = "image", "text"
        return [image, text]
    name = options.filename or GRAPH
    modality = _modality(encoder)
    if modality == "image":
        return [_image_graph(encoder, name)]
    if modality == "series":
        return [_series_graph(encoder, name)]
    return [_text_graph(encoder, name)]


def check(encoder: Any, options: ExportOptions) -> None:
    """Refuse what cannot be exported (the kind, the opset, --fp16 without its tool) before
    anything is written."""
    if options.opset is not None and not MIN_OPSET <= options.opset <= MAX_OPSET:
        raise SelfsupError(
            f"--opset {options.opset} is outside the opsets this export writes and was checked "
            f"at ({MIN_OPSET} to {MAX_OPSET}); leave it out for the exporter's default"
        )
    try:
        import onnxruntime  # noqa: F401  (every graph is checked with it before it counts)
    except ImportError:
        raise SelfsupError(
            "--format onnx checks its graphs with onnxruntime, which is not installed: "
            "pip install 'selfsup[export]'"
        ) from None
    if options.fp16:
        try:
            from onnxruntime.transformers import float16  # noqa: F401
        except ImportError:
            raise SelfsupError(
                "--fp16 converts with onnxruntime's float16 tool, which this onnxruntime lacks: "
                "pip install 'selfsup[export]'"
            ) from None
    plan(encoder, options)


def paths(folder: Path, encoder: Any, options: ExportOptions) -> list[Path]:
    graphs = plan(encoder, options)
    out = [folder / g.filename for g in graphs]
    if any(g.tokenizer is not None for g in graphs):
        out.append(folder / TOKENIZER)
    return out


def write(encoder: Any, folder: Path, options: ExportOptions) -> list[Path]:
    """Write every graph (checked against torch with onnxruntime) and the tokenizer, if any."""
    encoder.eval()
    written: list[Path] = []
    try:
        for graph in plan(encoder, options):
            target = folder / graph.filename
            written.append(target)
            _write_graph(encoder, graph, target, options)
            if graph.tokenizer is not None and not (folder / TOKENIZER).exists():
                graph.tokenizer.save_pretrained(str(folder / TOKENIZER))
                written.append(folder / TOKENIZER)
    except BaseException:
        for path in written:  # no half export: the graphs written so far go too
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        raise
    return written


def _write_graph(encoder: Any, graph: Graph, target: Path, options: ExportOptions) -> None:
    """The graph by the first exporter whose result onnxruntime runs as torch does on inputs
    of another batch size (and length) than the traced ones: the tracer, else torch.export."""
    import onnx

    failures = []
    for name, exporter in (("traced", _traced), ("dynamo", _dynamo)):
        try:
            model = exporter(graph, options)
        except Exception as err:  # the exporter's own errors: an op it has no ONNX form for
            failures.append(f"{name}: {str(err).splitlines()[0][:300] if str(err) else err!r}")
            continue
        opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        if options.opset is not None and opset != options.opset:  # torch.export: 18 or later
            failures.append(f"{name}: it wrote opset {opset}, not {options.opset}")
            continue
        if options.fp16:
            from onnxruntime.transformers.float16 import (
                DEFAULT_OP_BLOCK_LIST,
                convert_float_to_float16,
            )

            # float32 inputs and output stay as they are: callers feed and read float32. Gelu
            # stays float32: onnxruntime 1.32 crashes (a segfault, not an error) building a
            # session at its default optimisation level for a float16 Gelu after an Add (the
            # scratch text towers' blocks).
            model = convert_float_to_float16(
                model, keep_io_types=True, op_block_list=[*DEFAULT_OP_BLOCK_LIST, "Gelu"]
            )
        onnx.save(_with_metadata(model, encoder, graph, options), str(target))
        problem = _verify(target, graph, options.fp16)
        if problem is None:
            return
        failures.append(f"{name}: {problem}")
    target.unlink(missing_ok=True)
    raise SelfsupError(
        f"torch could not export {graph.filename} to ONNX"
        + (f" at opset {options.opset}" if options.opset else "")
        + " that runs as the encoder does ("
        + "; ".join(failures)
        + "); nothing was kept. Please report it with the run's encoder.json"
    )


@contextmanager
def _exporting() -> Iterator[None]:
    """Export settings: no fused attention kernel; the exporters' notices silenced (the
    TorchScript exporter's deprecation, the tracer's notes on Python branches frozen in the
    trace: `_verify` runs the graph on other shapes)."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # nn.TransformerEncoderLayer's fused inference kernel (the scratch text towers) has no
    # ONNX form; the layer's plain ops compute the same
    torch.backends.mha.set_fastpath_enabled(False)
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:  # torch.export's notes on opset conversion (checked after)
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category in (
                DeprecationWarning,
                FutureWarning,
                torch.jit.TracerWarning,
                UserWarning,
            ):
                warnings.simplefilter("ignore", category=category)
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def _no_stdout() -> Iterator[None]:
    """Standard output closed at the file descriptor: torch's TorchScript exporter prints the
    whole IR graph from C++ when it fails (its log switch is always on), which would bury the
    one error the export reports."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _traced(graph: Graph, options: ExportOptions) -> Any:
    """The TorchScript exporter's graph (see the module's docstring)."""
    import onnx

    buffer = io.BytesIO()
    with _exporting(), _no_stdout(), torch.no_grad():
        torch.onnx.export(
            graph.module.eval(),
            tuple(graph.inputs.values()),
            buffer,
            input_names=list(graph.inputs),
            output_names=[OUTPUT],
            dynamic_axes={**graph.dynamic, OUTPUT: {0: "batch"}},
            opset_version=options.opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def _dynamo(graph: Graph, options: ExportOptions) -> Any:
    """torch.export's ONNX graph: it writes adaptive average pooling to sizes that do not
    divide the input's (the VAE encoder, AdaIN's content grid), which the tracer cannot, and
    keeps nn.MultiheadAttention's shapes dynamic (the scratch text towers), which the trace
    freezes."""
    dims = {
        name: torch.export.Dim(name) for axes in graph.dynamic.values() for name in axes.values()
    }
    shapes = tuple(
        {axis: dims[name] for axis, name in graph.dynamic.get(key, {}).items()}
        for key in graph.inputs
    )
    with _exporting():
        program = torch.onnx.export(
            graph.module.eval(),
            tuple(graph.inputs.values()),
            input_names=list(graph.inputs),
            output_names=[_PENDING],
            dynamic_shapes=shapes,
            opset_version=options.opset,
            dynamo=True,
            verbose=False,
        )
    model = program.model_proto
    # torch.export names an embedding lookup's value "embedding": rename it, then the output
    _rename(model.graph, OUTPUT, OUTPUT + "_lookup")
    _rename(model.graph, _PENDING, OUTPUT)
    return model


def _rename(graph: Any, old: str, new: str) -> None:
    """Rename the value `old` of an ONNX graph (where nodes make and read it, the graph's
    inputs, outputs, value infos and initializers) to `new`."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        if value.name == old:
            value.name = new


def _with_metadata(model: Any, encoder: Any, graph: Graph, options: ExportOptions) -> Any:
    import onnx

    spec = encoder.spec
    props = {
        "selfsup.format": FORMAT_TAG,
        "selfsup.kind": encoder.kind,
        "selfsup.modality": graph.modality,
        "selfsup.out_dim": str(graph.out_dim),
        "selfsup.normalize": "true" if getattr(spec, "normalize", False) else "false",
        "selfsup.spec": json.dumps(spec.to_dict()),
        "selfsup.preprocess": json.dumps(graph.preprocess),
        "selfsup.precision": "fp16" if options.fp16 else "fp32",
        **graph.extra,
    }
    onnx.helper.set_model_props(model, props)
    return model


def _verify(path: Path, graph: Graph, fp16: bool) -> str | None:
    """What is wrong with the written graph on the probe inputs (another batch size and
    length than the traced ones) compared with torch; None when it agrees."""
    import onnxruntime as ort

    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4  # its failures are reported here, not logged
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        got = session.run([OUTPUT], {k: v.numpy() for k, v in graph.probe.items()})[0]
    except Exception as err:  # onnxruntime's own errors: an invalid graph, a frozen shape
        return f"onnxruntime failed: {str(err).splitlines()[0][:300]}"
    with torch.no_grad():
        want = graph.module(*graph.probe.values()).numpy()
    if got.shape != want.shape:
        return f"embeddings of shape {got.shape}, torch's {want.shape}"
    diff = float(np.abs(got - want).max())
    limit = (FP16_TOLERANCE if fp16 else FP32_TOLERANCE) * max(1.0, float(np.abs(want).max()))
    if not diff <= limit:
        return f"embeddings differ from torch's by {diff:.3g} (more than {limit:.3g})"
    return None


def load_snippet(folder: str, encoder: Any) -> str:
    """How to load this export, for the model card: selfsup's torch-free serving, then plain
    onnxruntime with the graph's own input names."""
    graphs = sorted(p.name for p in Path(folder).glob("*.onnx"))
    target = folder if len(graphs) > 1 else f"{folder}/{graphs[0]}"
    inputs = {"image": "pixels", "series": "series"}.get(_modality(encoder), "input_ids")
    return (
        "import selfsup  # needs onnxruntime, not torch\n\n"
        f'encoder = selfsup.load("{target}")\n'
        "embeddings = selfsup.embed(encoder, inputs)  # preprocessing as in training\n\n"
        "# or onnxruntime alone, on inputs prepared as the graph's metadata says:\n"
        "import onnxruntime\n"
        f'session = onnxruntime.InferenceSession("{folder}/{graphs[0]}")\n'
        f'(embeddings,) = session.run(["embedding"], {{"{inputs}": ...}})'
    )
