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
is named `embedding`, as the contract's output) and takes 3-5x longer per graph; the traced graphs
of every kind here match torch within 1e-5 at other batch sizes and lengths
(tests/exports/test_onnx_export.py). Where the tracer has no ONNX form for an op (adaptive
average pooling to a size that does not divide the input's: the VAE encoder, AdaIN's content
grid) the graph comes from the dynamo exporter instead. Either way the check in `write` runs the
graph with onnxruntime against torch. torch marks the TorchScript exporter deprecated; that
notice is silenced here.
"""

from __future__ import annotations

import io
import json
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
CLIP_GRAPHS = ("image.onnx", "text.onnx")
TOKENIZER = "tokenizer"
FORMAT_TAG = "selfsup-onnx/1"
RESIZE_RULE = "shorter side, centre crop"
# The opsets the TorchScript exporter writes and every kind here was checked at (its default
# is 17 in torch 2.14); LayerNorm is one op from 17 on, a decomposition below.
MIN_OPSET, MAX_OPSET = 14, 20
# Largest |onnxruntime - torch| the check in `write` accepts: fp32 graphs agree to about 1e-6
# (tests assert 1e-4); fp16 graphs (float16 weights and activations, float32 inputs and
# outputs) by up to about 1e-2 of the embeddings' largest magnitude (docs/export.md).
FP32_TOLERANCE = 1e-4
FP16_RELATIVE_TOLERANCE = 2e-2

IMAGE_KINDS = ("image", "multiview", "cyclegan", "rbm", "nade", "mahalanobis", "cswm")
SERIES_KINDS = ("series", "ts2vec", "tstcc")
TEXT_KINDS = ("text", "text-scratch", "text-words")


@dataclass
class Graph:
    """One ONNX graph to write: its file, the wrapper traced, example inputs and what goes
    into the metadata."""

    filename: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
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
    out_dim = project.out_features if project is not None else int(encoder.out_dim)
    return Graph(
        filename,
        _Embed(encoder, project),
        {"pixels": example},
        {"pixels": {0: "batch"}},
        "image",
        preprocess,
        out_dim,
    )


def _series_graph(encoder: Any, filename: str) -> Graph:
    channels = int(encoder.spec.in_channels)
    min_steps = int(getattr(encoder.spec, "receptive_field", 1))
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, channels, max(64, 2 * min_steps), generator=generator)
    preprocess = {"input": "series", "channels": channels, "min_steps": min_steps}
    return Graph(
        filename,
        _Embed(encoder),
        {"series": example},
        {"series": {0: "batch", 2: "steps"}},
        "series",
        preprocess,
        int(encoder.out_dim),
    )


def _text_graph(
    encoder: Any, filename: str, project: nn.Module | None = None, owner: Any = None
) -> Graph:
    """The graph of a text encoder (or of CLIP's text tower, `owner` the CLIP encoder)."""
    owner = owner if owner is not None else encoder
    which = "" if owner is encoder else f" (its text tower is {encoder.kind!r})"
    if encoder.kind != "text":
        raise _refused(
            owner.kind,
            f"its tokenizer{which} is selfsup's own byte or word tokenizer, which has no "
            "tokenizer.json for an ONNX runtime to read beside the graph",
            owner,
        )
    tokenizer = encoder.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise _refused(
            owner.kind,
            f"its tokenizer{which} ({type(tokenizer).__name__}) is not a fast tokenizer, so no "
            "tokenizer.json can be saved beside the graph",
            owner,
        )
    # Rows of unequal length: with every mask entry 1 a trace may drop the mask altogether.
    batch = encoder.preprocess(["an example sentence to trace the graph with", "a"])
    if bool(batch["attention_mask"].all()):
        raise SelfsupError("the tokenizer padded no row of the trace's example; cannot export")
    preprocess = {
        "tokenizer": TOKENIZER,
        "max_length": int(encoder.spec.max_length),
        "pooling": encoder.spec.pooling,
        "padding_side": str(getattr(tokenizer, "padding_side", "right")),
    }
    axes = {0: "batch", 1: "tokens"}
    out_dim = project.out_features if project is not None else int(encoder.out_dim)
    return Graph(
        filename,
        _EmbedTokens(encoder, project),
        {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
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
    for graph in plan(encoder, options):
        model = _export(graph, options)
        model = _with_metadata(model, encoder, graph, options)
        target = folder / graph.filename
        import onnx

        onnx.save(model, str(target))
        written.append(target)
        try:
            _verify(target, graph, options.fp16)
        except SelfsupError:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        if graph.tokenizer is not None and not (folder / TOKENIZER).exists():
            graph.tokenizer.save_pretrained(str(folder / TOKENIZER))
            written.append(folder / TOKENIZER)
    return written


def _export(graph: Graph, options: ExportOptions) -> Any:
    """The ONNX model of one graph (float16 when asked): traced, or by torch.export where the
    trace cannot express an op (see the module's docstring)."""
    import onnx

    try:
        model = _traced(graph, options)
    except Exception as traced_error:  # the tracer's own errors: an op it has no ONNX form for
        try:
            model = _dynamo(graph, options)
        except Exception:
            reason = str(traced_error).split("\n")[0][:300]
            raise SelfsupError(
                f"torch could not export {graph.filename} to ONNX"
                + (f" at opset {options.opset}" if options.opset else "")
                + f": {reason}"
            ) from None
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load_from_string(model)
    if options.fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # float32 inputs and output stay as they are: callers feed and read float32
        model = convert_float_to_float16(model, keep_io_types=True)
    return model


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' notices: the TorchScript exporter's deprecation, the tracer's
    notes on Python branches frozen in the trace (the shapes that matter are checked in
    `_verify`)."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning, torch.jit.TracerWarning, UserWarning):
            warnings.simplefilter("ignore", category=category)
        yield


def _traced(graph: Graph, options: ExportOptions) -> bytes:
    buffer = io.BytesIO()
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            graph.module.eval(),
            tuple(graph.inputs.values()),
            buffer,
            input_names=list(graph.inputs),
            output_names=["embedding"],
            dynamic_axes={**graph.dynamic, "embedding": {0: "batch"}},
            opset_version=options.opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return buffer.getvalue()


def _dynamo(graph: Graph, options: ExportOptions) -> Any:
    """torch.export's ONNX program of the graph: it writes adaptive average pooling to sizes
    that do not divide the input's (the VAE encoder, AdaIN's content grid), which the tracer
    cannot."""
    dims = {
        name: torch.export.Dim(name) for axes in graph.dynamic.values() for name in axes.values()
    }
    shapes = tuple(
        {axis: dims[name] for axis, name in graph.dynamic.get(key, {}).items()}
        for key in graph.inputs
    )
    with _quiet():
        program = torch.onnx.export(
            graph.module.eval(),
            tuple(graph.inputs.values()),
            input_names=list(graph.inputs),
            output_names=["embedding"],
            dynamic_shapes=shapes,
            opset_version=options.opset,
            dynamo=True,
            verbose=False,
        )
    return program.model_proto


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


def _verify(path: Path, graph: Graph, fp16: bool) -> None:
    """Run the written graph on its example inputs with onnxruntime and compare with torch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: value.numpy() for name, value in graph.inputs.items()}
    got = session.run(["embedding"], feeds)[0]
    with torch.no_grad():
        want = graph.module(*graph.inputs.values()).numpy()
    diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    limit = FP16_RELATIVE_TOLERANCE * max(1.0, float(np.abs(want).max())) if fp16 else None
    limit = limit if limit is not None else FP32_TOLERANCE
    if not diff <= limit:
        raise SelfsupError(
            f"the exported {path.name} gives embeddings that differ from torch's by {diff:.3g} "
            f"(more than {limit:.3g}) on its check inputs; nothing was kept. Please report it "
            "with the run's encoder.json"
        )
