"""A loaded ONNX export of an encoder, run by onnxruntime with no torch:
`selfsup.load("model.onnx")` returns one and `selfsup.embed` embeds through it with the options
it has for torch encoders.

It reads the ONNX contract's metadata (`selfsup.format` "selfsup-onnx/1", kind, modality, out_dim,
normalize, spec, preprocess; docs/export.md), prepares raw input in numpy as the torch encoder's
`preprocess` does (`selfsup.onnx_inputs`) and runs the graph in batches. A CLIP export is a folder
of `image.onnx` and `text.onnx`: strings go to the text graph, images to the image graph, as
`ClipEncoder.preprocess` decides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.errors import SelfsupError
from selfsup.onnx_inputs import SentenceTokenizer, image_uint8, is_text, series_array

FORMAT = "selfsup-onnx/1"
GRAPH = "model.onnx"  # one graph; a CLIP export holds the two below
CLIP_GRAPHS = ("image.onnx", "text.onnx")
MODALITIES = ("image", "text", "series")


def onnx_target(path: Path) -> bool:
    """Whether `path` names an ONNX export: a .onnx file, or a folder holding model.onnx (or
    CLIP's image.onnx and text.onnx) and no selfsup encoder (encoder.json)."""
    if path.suffix == ".onnx":
        return True
    if not path.is_dir() or (path / "encoder.json").is_file():
        return False
    return (path / GRAPH).is_file() or all((path / g).is_file() for g in CLIP_GRAPHS)


def load_onnx(path: str | Path, device: str | None = None) -> Any:
    """The ONNX export at `path` (a .onnx file or its folder) as an encoder for `selfsup.embed`.

    `device`: None or "cpu" runs on onnxruntime's CPU provider, "cuda" / "cuda:N" on its CUDA
    provider (an error when this onnxruntime has none)."""
    path = Path(path)
    if not path.exists():
        raise SelfsupError(f"{path} does not exist; pass an ONNX file written by `selfsup export`")
    if path.is_dir():
        if (path / GRAPH).is_file():
            return OnnxEncoder(path / GRAPH, device)
        image, text = (OnnxEncoder(path / g, device) for g in CLIP_GRAPHS)
        return OnnxClipEncoder(image, text)
    return OnnxEncoder(path, device)


def providers(device: str | None) -> tuple[list[Any], str]:
    """onnxruntime providers for `device` and its canonical name, or one clear error."""
    name = "cpu" if device is None else str(device)
    if name == "cpu":
        return ["CPUExecutionProvider"], "cpu"
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise SelfsupError(f"unknown device {name!r} for an ONNX encoder; use cpu, cuda or cuda:N")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise SelfsupError(
            f"device {name!r} needs onnxruntime's CUDA provider, which this onnxruntime lacks "
            f"(it has: {', '.join(ort.get_available_providers())}); install onnxruntime-gpu "
            "or use device='cpu'"
        )
    return [("CUDAExecutionProvider", {"device_id": int(index or 0)})], name


class OnnxEncoder:
    """One exported graph: `kind`, `modality`, `out_dim`, `spec` (the torch encoder's spec as a
    dict), `normalize` (whether `selfsup.embed` gives unit rows by default), `preprocess(raw)`
    (the graph's inputs for every row) and `embed(raw, ...)`."""

    def __init__(self, path: Path, device: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise SelfsupError(
                f"{self.path} does not exist; pass an ONNX file written by `selfsup export`"
            )
        self._sessions: dict[str, Any] = {}
        self.device = providers(device)[1]
        meta = self._session(self.device).get_modelmeta().custom_metadata_map
        if meta.get("selfsup.format") != FORMAT:
            raise SelfsupError(
                f"{self.path} is an ONNX graph but not a selfsup export (its metadata has no "
                f"selfsup.format {FORMAT!r}); export the run with "
                "`selfsup export RUN --format onnx`"
            )
        self.kind: str = meta["selfsup.kind"]
        self.modality: str = meta["selfsup.modality"]
        if self.modality not in MODALITIES:
            raise SelfsupError(
                f"{self.path} embeds {self.modality!r}; this selfsup serves {', '.join(MODALITIES)}"
            )
        self.out_dim = int(meta["selfsup.out_dim"])
        self.normalize = meta.get("selfsup.normalize", "false") == "true"
        self.spec: dict[str, Any] = json.loads(meta.get("selfsup.spec", "{}"))
        self.prep: dict[str, Any] = json.loads(meta.get("selfsup.preprocess", "{}"))
        self._tokenizer: SentenceTokenizer | None = None
        if self.modality == "text":
            folder = self.path.parent / self.prep.get("tokenizer", "tokenizer")
            self._tokenizer = SentenceTokenizer(
                folder, int(self.prep["max_length"]), self.prep.get("padding_side")
            )

    def _session(self, device: str) -> Any:
        """The onnxruntime session on `device` (made once per device)."""
        if device not in self._sessions:
            import onnxruntime as ort

            try:
                self._sessions[device] = ort.InferenceSession(
                    str(self.path), providers=providers(device)[0]
                )
            except Exception as error:  # onnxruntime's own types: InvalidProtobuf, Fail, ...
                raise SelfsupError(
                    f"{self.path} is not a readable ONNX graph ({type(error).__name__}: "
                    f"{str(error).strip()[:200]}); export the run again"
                ) from None
        return self._sessions[device]

    def preprocess(self, raw: Any) -> dict[str, np.ndarray]:
        """The graph's inputs for every row of `raw` (images: uint8 at the graph's size, turned
        to float pixels batch by batch in `embed`)."""
        if self.modality == "image":
            return {"pixels": image_uint8(raw, self.prep)}
        if self.modality == "series":
            series = series_array(raw, int(self.prep["channels"]))
            shortest = int(self.prep.get("min_steps", 1))
            if series.shape[2] < shortest:
                raise SelfsupError(
                    f"series of {series.shape[2]} steps are shorter than the encoder's "
                    f"receptive field ({shortest} steps)"
                )
            return {self.prep.get("input", "series"): series}
        if isinstance(raw, (list, tuple)) and not raw:
            raise SelfsupError("no sentences to embed")
        if not is_text(raw):
            raise SelfsupError(
                f"this is a text encoder; pass a list of strings, not {type(raw).__name__}"
            )
        assert self._tokenizer is not None
        return self._tokenizer([raw] if isinstance(raw, str) else list(raw))

    def embed(
        self,
        raw: Any,
        *,
        batch_size: int,
        device: str | None = None,
        progress: Callable[[Any], Any] | None = None,
    ) -> np.ndarray:
        """Embeddings (N, out_dim) float32 of `raw`, `batch_size` rows per graph run; token rows
        longest first (each batch cut to its longest row, as the torch encoder drops all-padding
        columns), back in the caller's order. `progress` wraps the batch starts (a tqdm bar)."""
        session = self._session(providers(device)[1] if device is not None else self.device)
        rows = self.preprocess(raw)
        n = len(next(iter(rows.values())))
        if n == 0:
            raise SelfsupError("no samples to embed")
        order = _longest_first(rows.get("attention_mask"))
        out = np.empty((n, self.out_dim), dtype=np.float32)
        starts = range(0, n, batch_size)
        for start in progress(starts) if progress is not None else starts:
            end = start + batch_size
            picked = slice(start, end) if order is None else order[start:end]
            feeds = {name: value[picked] for name, value in rows.items()}
            if "pixels" in feeds:
                feeds["pixels"] = feeds["pixels"].astype(np.float32) / np.float32(255)
            if "attention_mask" in feeds:
                feeds = _drop_padding_columns(feeds)
            out[picked] = session.run(["embedding"], feeds)[0]
        return out

    def __repr__(self) -> str:
        return f"OnnxEncoder({self.path}, kind={self.kind}, modality={self.modality})"


class OnnxClipEncoder:
    """A CLIP export: `image.onnx` and `text.onnx`, one embedding space. Strings (a string or a
    list of them) go to the text graph, anything else to the image graph."""

    modality = "image-text"

    def __init__(self, image: OnnxEncoder, text: OnnxEncoder):
        self.image, self.text = image, text
        self.kind = image.kind
        self.out_dim = image.out_dim
        self.normalize = image.normalize
        self.spec = image.spec

    def tower(self, raw: Any) -> OnnxEncoder:
        return self.text if is_text(raw) else self.image

    def preprocess(self, raw: Any) -> dict[str, np.ndarray]:
        return self.tower(raw).preprocess(raw)

    def embed(self, raw: Any, **options: Any) -> np.ndarray:
        return self.tower(raw).embed(raw, **options)

    def __repr__(self) -> str:
        return f"OnnxClipEncoder({self.image.path.parent})"


def _longest_first(mask: np.ndarray | None) -> np.ndarray | None:
    """Row order by decreasing token count (stable), as `embedding.encode_rows` takes token rows."""
    if mask is None:
        return None
    return np.argsort(-mask.sum(axis=1), kind="stable")


def _drop_padding_columns(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns that are padding in every row of the batch left out."""
    keep = feeds["attention_mask"].any(axis=0)
    return {name: value[:, keep] for name, value in feeds.items()}
