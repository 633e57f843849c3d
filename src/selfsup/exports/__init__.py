"""Exports of a run's encoder to the formats other libraries load (ONNX, sentence-transformers,
timm, torchvision, selfsup's own folder), each beside a model card; `selfsup export` and
`selfsup.export` both go through `exports.export.export`."""
