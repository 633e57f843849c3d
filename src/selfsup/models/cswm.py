"""C-SWM's networks (Kipf, van der Pol & Welling 2020), as tkipf/c-swm's `modules.py` builds
them: a CNN object extractor into K feature maps (one per object slot), an MLP object encoder
mapping each flattened map to a D-dimensional object state, and a graph neural network over
the K slots (fully connected, no self-edges) that predicts each slot's state change from the
action, given as a one-hot of the action's direction attached to the slot of the object it moves
(action a: slot a // A, direction a % A, A = actions per object).

The exported encoder is the whole world model: `forward` gives the flattened state (B, K * D)
the protocols rank, `predict` rolls it out along actions with the transition model, and
`object_maps` gives the extractor's maps for the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from selfsup.errors import SelfsupError

EXTRACTORS = ("small",)


@dataclass
class CswmSpec:
    """Everything needed to rebuild a C-SWM world model without the training code."""

    kind: ClassVar[str] = "cswm"
    modality: ClassVar[str] = "transitions"

    in_channels: int
    image_size: tuple[int, int]
    num_actions: int
    num_objects: int = 5
    embedding_dim: int = 2
    hidden_dim: int = 512
    extractor: str = "small"

    def __post_init__(self) -> None:
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        if self.extractor not in EXTRACTORS:
            raise SelfsupError(
                f"C-SWM object extractor {self.extractor!r} is not built here; choose: "
                f"{', '.join(EXTRACTORS)}"
            )
        if self.num_objects < 1 or self.num_actions % self.num_objects:
            raise SelfsupError(
                f"the data has {self.num_actions} actions, which do not split evenly over "
                f"{self.num_objects} object slots (C-SWM attaches action a to slot a // "
                f"(actions / slots)); set method.num_objects to a divisor of {self.num_actions}"
            )
        if min(self.image_size) < 10:
            raise SelfsupError(
                f"C-SWM's small extractor reads 10 x 10 pixel cells; the observations are "
                f"{self.image_size[0]} x {self.image_size[1]}"
            )
        if self.hidden_dim < 16 or self.embedding_dim < 1:
            raise SelfsupError("method.hidden_dim must be at least 16, embedding_dim at least 1")

    @property
    def actions_per_object(self) -> int:
        return self.num_actions // self.num_objects

    @property
    def map_size(self) -> tuple[int, int]:
        """(h, w) of each object slot's feature map: the small extractor's stride is 10."""
        return self.image_size[0] // 10, self.image_size[1] // 10

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CswmSpec:
        return cls(**d)


class ObjectExtractor(nn.Module):
    """EncoderCNNSmall: 10 x 10 conv with stride 10 (hidden / 16 channels), BatchNorm, ReLU,
    1 x 1 conv to K maps, sigmoid: one map per object slot at 1/10 of the image side."""

    def __init__(self, spec: CswmSpec):
        super().__init__()
        width = spec.hidden_dim // 16
        self.conv1 = nn.Conv2d(spec.in_channels, width, 10, stride=10)
        self.norm = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, spec.num_objects, 1)
        for conv in (self.conv1, self.conv2):  # the reference's weights_init
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.conv2(torch.relu(self.norm(self.conv1(x)))))


class ObjectEncoder(nn.Module):
    """EncoderMLP: each slot's flattened map -> Linear, ReLU, Linear, LayerNorm, ReLU, Linear."""

    def __init__(self, spec: CswmSpec):
        super().__init__()
        h, w = spec.map_size
        hidden = spec.hidden_dim
        self.net = nn.Sequential(
            nn.Linear(h * w, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, spec.embedding_dim),
        )

    def forward(self, maps: Tensor) -> Tensor:
        return self.net(maps.flatten(2))


class TransitionGNN(nn.Module):
    """TransitionGNN: edge MLP on (x_i, x_j) for i != j, summed into node i; node MLP on
    (x_i, action one-hot of slot i, edge sum) -> the change of x_i."""

    def __init__(self, spec: CswmSpec):
        super().__init__()
        d, hidden, a = spec.embedding_dim, spec.hidden_dim, spec.actions_per_object
        self.num_objects, self.actions_per_object = spec.num_objects, a
        self.edge = nn.Sequential(
            nn.Linear(2 * d, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
        )
        self.node = nn.Sequential(
            nn.Linear(d + a + hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, d),
        )
        self.register_buffer("no_self", 1 - torch.eye(spec.num_objects), persistent=False)

    def forward(self, states: Tensor, action: Tensor) -> Tensor:
        b, k, d = states.shape
        pairs = torch.cat(
            [states[:, :, None].expand(b, k, k, d), states[:, None].expand(b, k, k, d)], dim=-1
        )
        messages = (self.edge(pairs) * self.no_self[:, :, None]).sum(2)  # (B, K, hidden)
        onehot = nn.functional.one_hot(action.long(), k * self.actions_per_object)
        onehot = onehot.to(states.dtype).view(b, k, self.actions_per_object)
        return self.node(torch.cat([states, onehot, messages], dim=-1))


class CswmEncoder(nn.Module):
    """The world model: observation -> K object states (flattened as the features), and their
    prediction along actions."""

    kind = "cswm"

    def __init__(self, spec: CswmSpec):
        super().__init__()
        self.spec = spec
        self.out_dim = spec.num_objects * spec.embedding_dim
        self.extractor = ObjectExtractor(spec)
        self.object_encoder = ObjectEncoder(spec)
        self.transition = TransitionGNN(spec)

    def input(self, x: Tensor) -> Tensor:
        """uint8 observations to floats in [0, 1] (float input is taken as it is)."""
        return x.float() / 255 if x.dtype == torch.uint8 else x

    def object_maps(self, x: Tensor) -> Tensor:
        """(B, K, h, w) maps in [0, 1], one per object slot."""
        return self.extractor(self.input(x))

    def states(self, x: Tensor) -> Tensor:
        """(B, K, D) object states of observations."""
        return self.object_encoder(self.object_maps(x))

    def step(self, states: Tensor, action: Tensor) -> Tensor:
        """States after one action: z + T(z, a) (the model predicts the change)."""
        return states + self.transition(states, action)

    def predict(self, features: Tensor, actions: Tensor) -> Tensor:
        """Flattened states (B, K * D) rolled out along actions (B, T): (B, K * D)."""
        states = features.view(len(features), self.spec.num_objects, self.spec.embedding_dim)
        for t in range(actions.shape[1]):
            states = self.step(states, actions[:, t])
        return states.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.states(x).flatten(1)

    def preprocess(self, raw: Any) -> Tensor:
        """uint8 (N, C, H, W) arrays (or floats in [0, 1]) -> the model's input."""
        x = torch.as_tensor(np.asarray(raw))
        if x.dim() == 3:
            x = x[None]
        return x
