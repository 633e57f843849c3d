"""What every method provides; a method is one small file built on this class.

A method builds its encoder(s) and heads from the run's encoder spec, owns any state (momentum
teacher, queue, prototypes, memory bank), and says:

- `inputs`: the batch fields it may see. The loop hands it only these: a method that does not
  name "label" never sees labels (SupCon names it), "index" is the sample's position in the
  data set (InstDisc's memory bank names it).
- `views(batch)`: augmented views made on the batch's device; they may differ in size
  (multi-crop) or be the same input twice (SimCSE's dropout views).
- `loss(views, batch)`: the loss and figures to log (tensors; the loop reads them only when it
  logs, so no step waits for the device).
- `param_groups()`: parameter groups with per-group options (`lr_scale`, `fixed_lr`,
  `frozen_until`, `weight_decay`; see `selfsup.optim`). Teachers stay out.
- Several optimisers (a GAN's discriminator and generator): `updates` names them in the order
  they step; each has its groups (`update_groups(name)`) and its loss (`update_loss(name, ...)`),
  and `plan(progress)` says which of them step on a training step (VQ-VAE's two stages, a
  discriminator that starts late). A method with one optimiser writes `loss` and
  `param_groups` only: its one update, "main", reads them.
- `after_step(progress)`: EMA, queues, schedules, with training progress in [0, 1] counted
  after the step just taken (1.0 arrives on the last step).
- `find_unused_parameters`: set when some parameters get no gradient on some steps (DDP).
- `exported()`: the encoder that is saved and evaluated (`self.encoder`; DINO: its teacher).

State kept in modules or registered buffers is saved in checkpoints and restored on resume.
`forward` calls `loss`, so DDP wraps a method like any module. `watch(z)` hands the loop the
embedding it monitors for collapse (the normalised projector or predictor output).
Figures in the loss dict are logged and plotted in the report (a pretext task's accuracy);
`figures(batch)` adds pictures to it (an autoencoder's reconstructions), `heldout_figures(batch)`
figures of the method's own on held-out samples (a density model's negative log-likelihood).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.coerce import coerce_params
from selfsup.errors import SelfsupError
from selfsup.models import build_encoder

Batch = dict[str, torch.Tensor]

# In `inputs`, "main" stands for the modality's main field ("image" for images, "series" for
# series): a joint-embedding method that only augments and encodes the sample (SimCLR) runs on
# any modality that has one. The run hands the field under its own name; `main(batch)` reads it.
MAIN = "main"
# The one update of a method with one optimiser.
MAIN_UPDATE = "main"


class Method(nn.Module):
    """Base of every self-supervised method; subclasses set the class variables below."""

    name: ClassVar[str]
    # What `selfsup methods` says of it: the family (the README's grouping), the paper (authors,
    # year, name) and one line of what it learns.
    family: ClassVar[str]
    paper: ClassVar[str]
    summary: ClassVar[str]
    Config: ClassVar[type]
    inputs: ClassVar[frozenset[str]]
    # Fields of `inputs` a data set may lack (SimCLR's series mask: images have none; supervised
    # SimCSE's hard negatives): the run does not require them, the method reads them when present.
    optional_inputs: ClassVar[frozenset[str]] = frozenset()
    # The modalities whose data it trains on (image, text, series, pair); a run on any other is
    # refused before its data is read, naming the methods that serve that modality.
    modalities: ClassVar[frozenset[str]]
    # Whether it trains with human labels (SupCon's classes, NLI's entailment labels): the run,
    # eval.json and the report then say that it is not self-supervised.
    uses_labels: ClassVar[bool] = False
    # Buffers (or modules of buffers) every process keeps identical itself (a queue or memory
    # bank updated from the gathered batch): DDP must not overwrite them from rank 0 each forward.
    unsynced_buffers: ClassVar[tuple[str, ...]] = ()
    # The optimiser the method was published with at small scale (CIFAR-size where the authors
    # or solo-learn give one), as OptimConfig fields ({"name": "sgd", "lr": 0.03, ...}; lr per
    # 256 samples); what it leaves out comes from config.LIBRARY_OPTIM, and the user's optim.*
    # keys win. `optimiser_reference` says where the values come from (printed at start-up).
    optimiser: ClassVar[dict[str, Any]] = {}
    optimiser_reference: ClassVar[str] = ""
    # The augmentation the method was published with (a family of `augment.recipes.FAMILIES`:
    # simclr, byol, dino, swav, mae, none, ...); the image modality picks the family's recipe
    # for the images' size and channels. None: the method makes no image views (text, series).
    augment_family: ClassVar[str | None] = None
    # Set by a method that never applies the modality's augmentation (MLM masks tokens itself,
    # CPC predicts the series' future): what makes its training signal instead, printed at
    # start-up in place of the augmentation line, so that the line says what the run does;
    # "{cfg.NAME}" fields are filled from the method's config.
    views_note: ClassVar[str | None] = None
    # How many augmented views the default `views` makes: 2 for the two-view methods, 1 for a
    # pretext task on one image; DINO and SwAV set theirs from the multi-crop recipe.
    num_views: int = 2
    find_unused_parameters: ClassVar[bool] = False
    # The encoder the method was published with, per modality (TS2Vec: {"series": "ts2vec"}):
    # the run's `model.backbone` when the user leaves it at its default; the user's choice wins.
    backbones: ClassVar[dict[str, str]] = {}
    # The optimisers it owns, by name, in the order they step within one training step: one,
    # "main", for most; a GAN has ("discriminator", "generator"). All are built from the run's
    # resolved `optim.*` settings; a network's own learning rate is a group's `lr_scale`.
    updates: ClassVar[tuple[str, ...]] = (MAIN_UPDATE,)
    # The protocols its encoder is judged by when eval.protocols is unset (word2vec: word
    # similarity and analogies); empty: the modality's defaults.
    protocols: ClassVar[tuple[str, ...]] = ()
    # Which network `exported()` returns, as encoder.json records it ("exported").
    exported_as: ClassVar[str] = "online encoder (the network the optimizer trains)"
    # The Config dataclass's defaults are the paper's small-data (CIFAR-size) settings; each
    # entry here names another preset (e.g. "imagenet") by the parameters it changes.
    # `--set method.preset=imagenet` starts from it; parameters the user sets still win.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, spec: Any, cfg: Any, augment: Any):
        super().__init__()
        self.cfg = cfg
        self.augment = augment
        self.encoder = build_encoder(spec)
        # a modality's main field is named after its encoder kind ("image", "series"), or the
        # modality a kind of its own serves (`modality`: tstcc's is "series")
        self.main_field: str = getattr(spec, "modality", spec.kind)
        self._watched: torch.Tensor | None = None
        # Host copies of the counters (`register_counter`); None: re-read once after a load.
        self._counters: dict[str, float | None] = {}
        self.register_load_state_dict_post_hook(
            lambda module, _: module._counters.update(dict.fromkeys(module._counters))
        )

    def register_counter(self, name: str, dtype: torch.dtype = torch.float64) -> None:
        """A scalar buffer `name`, starting at 0 and saved in checkpoints, that the step reads on
        the host (`counter`) without waiting for the device: a copy is kept beside it."""
        self.register_buffer(name, torch.zeros((), dtype=dtype))
        self._counters[name] = 0

    def counter(self, name: str) -> float:
        """Counter `name`'s value; read from the device only once after a checkpoint loads."""
        if self._counters[name] is None:
            self._counters[name] = getattr(self, name).item()
        return self._counters[name]

    def set_counter(self, name: str, value: float) -> None:
        """Set counter `name` on the device (no sync) and on the host."""
        getattr(self, name).fill_(value)
        self._counters[name] = value

    @property
    def _ddp_params_and_buffers_to_ignore(self) -> list[str]:
        """What DDP leaves alone: `unsynced_buffers`. The one place the project names this
        attribute, which DDP reads from the module it wraps: torch has no public per-buffer
        switch (`broadcast_buffers` / `forward_sync_buffers` turn every buffer's broadcast on or
        off at once)."""
        return [n for n, _ in self.named_buffers() if n.split(".")[0] in self.unsynced_buffers]

    @classmethod
    def make_config(cls, params: dict[str, Any]) -> Any:
        """Build the method's config from user parameters, naming any unknown key.

        A "preset" parameter ("cifar", the dataclass defaults, or a key of `presets`) starts
        from that preset's values; the other parameters override them. Values are typed as the
        Config's fields (`--set method.predictor=no` is False); one that does not convert is
        refused naming its key.
        """
        params = coerce_params(cls.Config, params)
        preset = params.pop("preset", "cifar")
        if preset != "cifar":
            if preset not in cls.presets:
                raise SelfsupError(
                    f"unknown preset {preset!r} for method {cls.name!r}; valid: "
                    f"{', '.join(['cifar', *sorted(cls.presets)])}"
                )
            params = {**cls.presets[preset], **params}
        known = {f.name for f in fields(cls.Config)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise SelfsupError(
                f"unknown parameter(s) for method {cls.name!r}: {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(known)) or '(none)'}"
            )
        try:
            return cls.Config(**params)
        except (TypeError, ValueError) as err:
            raise SelfsupError(f"bad parameter for method {cls.name!r}: {err}") from None

    @classmethod
    def own_encoder_spec(cls, cfg: Any, train: Any) -> Any | None:
        """The encoder spec of a method whose encoder is made from the training data itself
        (word2vec's vocabulary), from its config and the training split; None (the default):
        the modality's spec (`Modality.encoder_spec`)."""
        return None

    def bind_data(self, num_samples: int) -> None:
        """Told the training set's size before training (and before a resume loads state):
        a method with per-sample state (InstDisc's memory bank) allocates it here. Default:
        nothing."""

    def main(self, batch: Batch) -> torch.Tensor:
        """The batch's main field, for a method whose `inputs` name "main"."""
        if self.main_field not in batch:
            raise SelfsupError(
                f"method {self.name!r} reads the {self.main_field!r} field; the batch holds "
                f"{', '.join(sorted(batch)) or 'nothing'}"
            )
        return batch[self.main_field]

    def views(self, batch: Batch) -> list[Any]:
        """Augmented views of a batch, made on the batch's device. Default: `num_views` views of
        the image (of the main field where `inputs` names "main"), view v with the recipe's
        view-v settings; a method of other inputs (text, series) says its own."""
        x = self.main(batch) if MAIN in self.inputs else batch["image"]
        return [self.augment(x, view=v) for v in range(self.num_views)]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss on the views, and figures to log."""
        raise NotImplementedError

    def forward(
        self, views: list[Any], batch: Batch, update: str = MAIN_UPDATE
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.update_loss(update, views, batch)

    def param_groups(self) -> list[dict[str, Any]]:
        """One group of every trainable parameter; override for per-group lr or weight decay."""
        return [{"params": [p for p in self.parameters() if p.requires_grad]}]

    def update_groups(self, update: str) -> list[dict[str, Any]]:
        """The parameter groups of the optimiser `update` (one of `updates`). Default: the one
        update's `param_groups()`; a method with several optimisers overrides this."""
        return self.param_groups()

    def update_loss(
        self, update: str, views: list[Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss the optimiser `update` steps on, and figures to log; computed after the
        updates before it in the plan have stepped (a generator's loss sees the discriminator
        just updated). Default: the one update's `loss`."""
        return self.loss(views, batch)

    def plan(self, progress: float) -> tuple[str, ...]:
        """The updates of the training step that starts at `progress` in [0, 1), in the order
        they step. Default: every one of `updates`, every step."""
        return self.updates

    def heldout_figures(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Figures of the method's own on held-out samples, one value per sample (a density
        model's negative log-likelihood in nats, bits per dimension, a reconstruction error):
        the run averages them over the held-out set at each evaluation and writes them beside
        the protocols' figures. Default: none."""
        return {}

    def after_step(self, progress: float) -> None:
        """Called after each optimizer step with the progress that step reached (EMA, queues)."""

    def figures(self, batch: Batch) -> dict[str, Any]:
        """Pictures of what the method learned, for the report: title -> uint8 image (H, W, 3)
        or (H, W). Called after training, and at each periodic evaluation, on a batch of
        held-out samples (the method's fields only); the run writes each to `figures/` (per
        step in `figures/steps/`) and the report shows them. Default: none. An autoencoder
        returns its reconstructions beside the inputs; a GAN, samples from fixed noise."""
        return {}

    def exported(self) -> nn.Module:
        """The encoder that is saved, evaluated (during training too) and handed to users: the
        network the optimizer trains. MoCo v1/v2, MoCo v3 and BYOL keep this default, as their
        papers evaluate the query / online encoder; DINO returns its teacher (momentum) backbone,
        which its paper's kNN and linear evaluations use."""
        return self.encoder

    def watch(self, z: torch.Tensor) -> None:
        """Keep (detached) the embedding the collapse monitor reads at the next log step."""
        self._watched = z.detach()

    @property
    def watched(self) -> torch.Tensor | None:
        """The embedding last given to `watch`, or None."""
        return self._watched
