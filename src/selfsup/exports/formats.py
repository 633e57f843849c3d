"""The export formats by name: what each writes, which encoders it takes, what it needs installed.

Adding a format is one entry here plus its module, which defines
`check(encoder, options)` (raise `SelfsupError` when this encoder cannot take the format),
`paths(folder, encoder, options)` (every file or folder it will write, so nothing is replaced
unasked) and `write(encoder, folder, options)` (write them). Modules are imported when used, so
`selfsup --help` imports neither onnx nor sentence-transformers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from selfsup.errors import SelfsupError


@dataclass(frozen=True)
class ExportOptions:
    """The settings of one export; a format reads those that concern it."""

    opset: int | None = None  # ONNX opset (None: the exporter's default)
    fp16: bool = False  # ONNX: weights and activations in float16
    filename: str | None = None  # ONNX: the graph's file name when `--out` names a .onnx file


@dataclass(frozen=True)
class ExportFormat:
    name: str
    module: str  # defines check / paths / write
    summary: str  # one line for `selfsup export --help`
    package: str | None = None  # the import it needs, if any
    install: str = ""  # what to install when that import fails

    def load(self) -> ModuleType:
        """The format's module, after checking the package it needs imports."""
        if self.package is not None:
            try:
                importlib.import_module(self.package)
            except ImportError:
                raise SelfsupError(
                    f"--format {self.name} needs {self.package}, which is not installed: "
                    f"{self.install}"
                ) from None
        return importlib.import_module(self.module)


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "selfsup",
            "selfsup.exports.native",
            "selfsup's own folder (encoder.safetensors + encoder.json): selfsup.load reads it",
        ),
        ExportFormat(
            "onnx",
            "selfsup.exports.onnx_graph",
            "ONNX graphs (model.onnx; CLIP: image.onnx + text.onnx; text: tokenizer/ beside) "
            "with the preprocessing in their metadata, for onnxruntime",
            package="onnx",
            install="pip install 'selfsup[export]'",
        ),
        ExportFormat(
            "sentence-transformers",
            "selfsup.exports.sentence_transformers_folder",
            "text encoders: a folder SentenceTransformer(path) loads (transformer, pooling, "
            "normalisation)",
        ),
        ExportFormat(
            "timm",
            "selfsup.exports.timm_weights",
            "ResNet and ViT image encoders: timm's model.safetensors + config.json "
            "(timm.create_model('local-dir:PATH', pretrained=True))",
        ),
        ExportFormat(
            "torchvision",
            "selfsup.exports.torchvision_weights",
            "ResNet image encoders: a state dict torchvision.models.resnetN loads (fc = Identity)",
        ),
        ExportFormat(
            "word2vec",
            "selfsup.exports.word2vec_text",
            "word-vector tables: word2vec's text format (gensim KeyedVectors.load_word2vec_format)",
        ),
    )
}


def get_format(name: str) -> ExportFormat:
    """The format called `name`, or one error listing the formats there are."""
    if name not in FORMATS:
        raise SelfsupError(f"unknown export format {name!r}; choose one of: {', '.join(FORMATS)}")
    return FORMATS[name]
