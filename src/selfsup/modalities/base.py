"""The Modality: everything that differs between images, sentences, series and pairs.

The loop, the evaluation, the report and search call these methods and never branch on a
modality. A modality says which batch fields its samples provide, how to build the encoder spec
from the training data, its default augmentation, how to turn a data split into model inputs,
its default evaluation protocols, its baselines (a random or untrained encoder of the same
spec, and the raw input: pixels, TF-IDF), and how a sample is shown in the report and search.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from selfsup.config import Config
from selfsup.modalities.sections import Section

Batch = dict[str, torch.Tensor]


class Modality:
    """Base of the modalities; one subclass per file in this package, one line in its registry."""

    name: ClassVar[str]
    fields: ClassVar[frozenset[str]]  # batch fields every sample provides
    # the field a method naming "main" in its inputs reads (SimCLR); None: no such field
    main_field: ClassVar[str | None] = None
    default_protocols: ClassVar[tuple[str, ...]]  # final evaluation when eval.protocols is unset
    online_protocols: ClassVar[tuple[str, ...]]  # the periodic check during training
    initial_row: ClassVar[str]  # eval.json row of the encoder as it was before training
    raw_row: ClassVar[str]  # eval.json row of the raw-input baseline
    row_titles: ClassVar[dict[str, str]]  # row -> what the report calls it
    # more baseline rows by name (`evaluate.baselines.BASELINES`: the series' dtw_1nn)
    extra_baselines: ClassVar[tuple[str, ...]] = ()
    # whether its raw features are fixed-width vectors the classical embeddings can fit
    # (`evaluate.classical`: PCA, MDS, Isomap, LLE with eval.baselines=pca,...)
    classical_input: ClassVar[bool] = False
    encoder_kind: ClassVar[str | None] = None  # the kind of its encoders when not `name` (pair)

    def encoder_spec(self, cfg: Config, train: Any) -> Any:
        """The spec of the run's encoder, from the config and the training split."""
        raise NotImplementedError

    def augment(self, cfg: Config, spec: Any) -> Any:
        """The run's augmentation (a callable the method uses in `views`), or None."""
        return None

    def describe_augment(self, augment: Any) -> str:
        """One line saying which augmentation the run uses (printed when training starts)."""
        return "augmentation: none" if augment is None else f"augmentation: {augment!r}"

    def tensors(self, data: Any, encoder: Any) -> Batch:
        """Model inputs of every sample of a split, one row each, held in memory."""
        raise NotImplementedError

    def encoder_input(self, batch: Batch) -> Any:
        """What the encoder's forward takes, from a batch of `tensors` rows."""
        raise NotImplementedError

    def raw_features(
        self, bank: Any, queries: Any, with_bank: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Features of the raw-input baseline for (bank, queries), fitted on the bank only;
        the bank's own rows only `with_bank` (protocols with labels need them)."""
        raise NotImplementedError

    def extra_features(self, encoder: Any, data: Any, cfg: Config, device: Any) -> dict[str, Any]:
        """More than the queries' features that this modality's protocols read (the pair
        modality's caption and class-prompt embeddings), into `Features.extra`; none here."""
        return {}

    def raw_extra_features(self, data: Any) -> dict[str, Any]:
        """The raw-input row's counterpart of `extra_features`, from the (bank, queries) of
        `data` (a `suite.EvalData`): what the protocols read beside the raw features (the
        transitions' identity-transition rollouts in pixel space); none here."""
        return {}

    def startup_notes(self, cfg: Config, encoder: Any, train: Any, eval_data: Any) -> list[str]:
        """Lines printed when training starts about what the model and the data will do (the
        text modality: where max_length came from, how many sentences it cuts, an evaluation
        that cannot measure quality); none by default."""
        return []

    def evaluation_caveat(self, eval_data: Any, protocols: Sequence[str] = ()) -> str | None:
        """What the final figures of `protocols` cannot tell on this evaluation data (a text run
        with no scored pairs: nothing measured quality), written into eval.json as "caveat";
        None here."""
        return None

    def report_sections(
        self, encoder: Any, bank: Any, queries: Any, augment: Any, device: str
    ) -> list[Section]:
        """Sections of the report that show samples, as data (`modalities.sections`); the
        report renders them. None by default."""
        return []
