"""Transitions (observation, action, next observation) for world models, and the 2-D shapes
environment of C-SWM (Kipf, van der Pol & Welling 2020) generated in the project.

A `TransitionData` split holds one row per transition: uint8 observations (N, C, H, W), the
integer action taken, the next observation, and each row's episode and step within it, so that
evaluation can roll a model out from an episode's first observation along its actions.

Sources: `shapes-2d[:TRAIN[,EVAL]]` generates the paper's block-pushing grid (defaults: 1,000
training episodes of 100 random actions and 1,000 held-out episodes of 10, drawn from other
seeds); `transitions:FILE.npz` reads `obs`, `action`, `next_obs` (and optionally `episode`,
`num_actions`, and `test_obs`, `test_action`, `test_next_obs`, `test_episode`).

The environment follows tkipf/c-swm's `envs/block_pushing.py` (render_type "shapes"): K = 5
objects on a 5 x 5 grid, each at its own cell, object k a circle (k % 3 = 0), triangle (1) or
square (2) in the k-th colour of matplotlib's Set1, each cell 10 x 10 pixels (50 x 50 RGB).
Action a moves object a // 4 one cell in direction a % 4 (up, right, down, left); a move off
the grid or onto another object leaves the state unchanged. Sprites are drawn in numpy inside
their 10 px cell (the reference draws them with skimage, whose polygons may touch one row of
the next cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from selfsup.config import DataConfig
from selfsup.data.split import DataSplits, Split, row_positions
from selfsup.errors import SelfsupError

GRID = 5  # cells per side
CELL = 10  # pixels per cell
OBJECTS = 5
STEPS = (1, 5, 10)  # the paper's prediction horizons: rollouts evaluated after k steps
DIRECTIONS = ((-1, 0), (0, 1), (1, 0), (0, -1))  # the reference's order: (row, column) offsets
# matplotlib's Set1, the colours the reference gives objects 0..4
COLOURS = ((228, 26, 28), (55, 126, 184), (77, 175, 74), (152, 78, 163), (255, 127, 0))
TRAIN_EPISODES, TRAIN_STEPS = 1000, 100  # the paper's training set (data_gen/env.py, seed 1)
EVAL_EPISODES, EVAL_STEPS = 1000, 10  # held-out episodes (ShapesEval-v0: 10 steps, seed 2)
TRAIN_SEED, EVAL_SEED = 1, 2
HELDOUT_FRACTION = 0.2  # of an npz's episodes, when it has no test_* arrays
HELDOUT_SEED = 0


@dataclass
class TransitionData(Split):
    """N transitions: `obs` and `next_obs` uint8 (N, C, H, W), `action` int64 (N,) in
    [0, num_actions), `episode` and `step` int64 (N,) (rows of one episode in step order)."""

    obs: Tensor
    action: Tensor
    next_obs: Tensor
    episode: Tensor
    step: Tensor
    num_actions: int
    name: str
    labels: Tensor | None = None
    classes: list[str] | None = None

    def __post_init__(self) -> None:
        n = len(self.obs)
        if self.obs.dtype != torch.uint8 or self.obs.dim() != 4:
            raise ValueError(f"obs must be uint8 (N, C, H, W); got {self.obs.dtype}")
        if self.next_obs.shape != self.obs.shape or self.next_obs.dtype != torch.uint8:
            raise ValueError("next_obs must be uint8 of obs's shape")
        for what in ("action", "episode", "step"):
            if getattr(self, what).shape != (n,):
                raise ValueError(f"{what} must be ({n},)")

    def __len__(self) -> int:
        return len(self.obs)

    @property
    def serves(self) -> frozenset[str]:
        return super().serves | {"transitions"}

    def subset(self, index: Tensor) -> TransitionData:
        rows = torch.as_tensor(row_positions(index), dtype=torch.long)
        return TransitionData(
            self.obs[rows],
            self.action[rows],
            self.next_obs[rows],
            self.episode[rows],
            self.step[rows],
            self.num_actions,
            self.name,
        )

    def paths(self, steps: int) -> tuple[Tensor, Tensor, Tensor]:
        """Every episode that has `steps` transitions from its step 0: (start rows (E,),
        actions (E, steps), target rows (E,)), the target row's `next_obs` being the
        observation `steps` actions after the start row's `obs`."""
        starts = (self.step == 0).nonzero()[:, 0]
        if len(starts) == 0:
            return starts, torch.zeros(0, steps, dtype=torch.long), starts
        offsets = torch.arange(steps)
        rows = (starts[:, None] + offsets).clamp(max=len(self) - 1)
        whole = (self.episode[rows] == self.episode[starts][:, None]) & (self.step[rows] == offsets)
        keep = whole.all(1) & (starts + steps - 1 < len(self))
        rows = rows[keep]
        return rows[:, 0], self.action[rows], rows[:, -1]


def _sprites() -> np.ndarray:
    """uint8 (OBJECTS + 1, CELL, CELL, 3): each object's cell as drawn, and an empty cell."""
    r, c = np.mgrid[0:CELL, 0:CELL]
    half = CELL / 2
    masks = (
        (r - half) ** 2 + (c - half) ** 2 < half**2,  # circle of radius 5 at the cell centre
        np.abs(c - half) <= r / 2,  # triangle: apex at the top middle, base along the bottom
        np.ones((CELL, CELL), dtype=bool),  # square filling the cell
    )
    out = np.zeros((OBJECTS + 1, CELL, CELL, 3), dtype=np.uint8)
    for k in range(OBJECTS):
        out[k][masks[k % 3]] = COLOURS[k]
    return out


def render_shapes(positions: np.ndarray) -> np.ndarray:
    """uint8 (M, 3, 50, 50) frames of object positions int (M, OBJECTS, 2) (row, column)."""
    m = len(positions)
    cells = np.full((m, GRID, GRID), OBJECTS, dtype=np.int64)
    frame = np.arange(m)[:, None]
    cells[frame, positions[..., 0], positions[..., 1]] = np.arange(OBJECTS)
    tiles = _sprites()[cells]  # (M, GRID, GRID, CELL, CELL, 3)
    side = GRID * CELL
    return np.ascontiguousarray(tiles.transpose(0, 5, 1, 3, 2, 4).reshape(m, 3, side, side))


def shapes_episodes(episodes: int, steps: int, seed: int) -> dict[str, np.ndarray]:
    """`episodes` episodes of `steps` uniformly random actions in the block-pushing grid:
    positions (E, steps + 1, OBJECTS, 2) and actions (E, steps)."""
    rng = np.random.default_rng(seed)
    # distinct cells per episode: what the reference's resampling until no collision draws
    cells = np.argsort(rng.random((episodes, GRID * GRID)), axis=1)[:, :OBJECTS]
    pos = np.stack([cells // GRID, cells % GRID], axis=-1)
    actions = rng.integers(0, OBJECTS * len(DIRECTIONS), size=(episodes, steps))
    moves = np.array(DIRECTIONS)
    path = [pos.copy()]
    rows = np.arange(episodes)
    for t in range(steps):
        obj, direction = actions[:, t] // len(DIRECTIONS), actions[:, t] % len(DIRECTIONS)
        new = pos[rows, obj] + moves[direction]
        inside = ((new >= 0) & (new < GRID)).all(1)
        taken = (pos == new[:, None]).all(-1).any(1)  # the mover's own cell differs from new
        ok = inside & ~taken
        pos = pos.copy()
        pos[rows[ok], obj[ok]] = new[ok]
        path.append(pos)
    return {"positions": np.stack(path, axis=1), "actions": actions}


def shapes_transitions(episodes: int, steps: int, seed: int, name: str) -> TransitionData:
    """The generated episodes as transitions, rendered 50 x 50 RGB."""
    made = shapes_episodes(episodes, steps, seed)
    positions = made["positions"]
    frames = render_shapes(positions.reshape(-1, OBJECTS, 2))
    frames = frames.reshape(episodes, steps + 1, *frames.shape[1:])
    obs = torch.from_numpy(frames[:, :-1].reshape(-1, *frames.shape[2:]))
    next_obs = torch.from_numpy(frames[:, 1:].reshape(-1, *frames.shape[2:]))
    return TransitionData(
        obs,
        torch.from_numpy(made["actions"].reshape(-1)).long(),
        next_obs,
        torch.arange(episodes).repeat_interleave(steps),
        torch.arange(steps).repeat(episodes),
        OBJECTS * len(DIRECTIONS),
        name,
    )


def _count(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SelfsupError(
            f"shapes-2d:{text!r}: the number of {what} episodes must be a positive integer "
            "(shapes-2d:TRAIN[,EVAL], e.g. shapes-2d:200,100)"
        )
    return value


def load_shapes_2d(path: str | None, options: DataConfig) -> DataSplits:
    """`shapes-2d[:TRAIN[,EVAL]]`: TRAIN episodes of 100 steps for training (default 1,000)
    and EVAL held-out episodes of 10 steps (default 1,000), each from its own seed."""
    train_n, eval_n = TRAIN_EPISODES, EVAL_EPISODES
    if path:
        parts = path.split(",")
        if len(parts) > 2:
            raise SelfsupError(f"shapes-2d:{path}: write shapes-2d:TRAIN[,EVAL] episodes")
        train_n = _count(parts[0], "training")
        if len(parts) == 2:
            eval_n = _count(parts[1], "held-out")
    train = shapes_transitions(train_n, TRAIN_STEPS, TRAIN_SEED, "shapes-2d")
    test = shapes_transitions(eval_n, EVAL_STEPS, EVAL_SEED, "shapes-2d (held-out episodes)")
    return DataSplits(train, test, f"{eval_n} held-out episodes of {EVAL_STEPS} steps")


def _observations(array: np.ndarray, key: str, file: str) -> Tensor:
    """uint8 (N, C, H, W) from uint8 or float in [0, 1] channels-first arrays."""
    if array.ndim != 4 or not 1 <= array.shape[1] <= 4:
        raise SelfsupError(
            f"{file}: '{key}' is {array.shape}; observations must be (N, C, H, W) with 1 to 4 "
            "channels first (transpose (N, H, W, C) arrays with np.moveaxis(x, -1, 1))"
        )
    if array.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(array))
    if not np.issubdtype(array.dtype, np.floating):
        raise SelfsupError(f"{file}: '{key}' is {array.dtype}; give uint8 or floats in [0, 1]")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
        raise SelfsupError(f"{file}: '{key}' holds floats outside [0, 1] (or NaN); scale to [0, 1]")
    return torch.from_numpy(np.rint(array * 255).astype(np.uint8))


def _episodes(obs: Tensor, next_obs: Tensor, given: np.ndarray | None, file: str) -> Tensor:
    """Each row's episode: as given (rows of an episode must be contiguous), else a new episode
    wherever a row's obs is not the previous row's next_obs."""
    n = len(obs)
    if given is None:
        breaks = (obs[1:] != next_obs[:-1]).flatten(1).any(1)
        return torch.cat([torch.zeros(1, dtype=torch.long), breaks.long().cumsum(0)])
    if given.shape != (n,) or not np.issubdtype(given.dtype, np.integer):
        raise SelfsupError(
            f"{file}: 'episode' is {given.dtype} {given.shape}; give one integer id per row ({n},)"
        )
    episode = torch.from_numpy(given.astype(np.int64))
    changes = (episode[1:] != episode[:-1]).sum().item() + 1
    if changes != len(episode.unique()):
        raise SelfsupError(
            f"{file}: the rows of an episode are not contiguous; sort the rows by episode, then "
            "by step"
        )
    return torch.unique_consecutive(episode, return_inverse=True)[1]


def _steps(episode: Tensor) -> Tensor:
    starts = torch.cat([torch.ones(1, dtype=torch.bool), episode[1:] != episode[:-1]])
    index = torch.arange(len(episode))
    first = torch.cummax(torch.where(starts, index, torch.zeros_like(index)), 0).values
    return index - first


def _read_part(arrays: dict, prefix: str, file: str, num_actions: int | None) -> TransitionData:
    keys = [f"{prefix}obs", f"{prefix}action", f"{prefix}next_obs"]
    obs = _observations(arrays[keys[0]], keys[0], file)
    next_obs = _observations(arrays[keys[2]], keys[2], file)
    action = arrays[keys[1]]
    if next_obs.shape != obs.shape:
        raise SelfsupError(
            f"{file}: '{keys[2]}' is {tuple(next_obs.shape)} and '{keys[0]}' "
            f"{tuple(obs.shape)}; each transition needs an observation and a next observation "
            "of the same shape"
        )
    if action.shape != (len(obs),):
        raise SelfsupError(
            f"{file}: '{keys[1]}' is {action.shape} for {len(obs)} observations; give one "
            f"integer action per transition ({len(obs)},)"
        )
    if len(obs) == 0:
        raise SelfsupError(f"{file}: '{keys[0]}' holds no transitions")
    if not np.issubdtype(action.dtype, np.integer):
        raise SelfsupError(
            f"{file}: '{keys[1]}' is {action.dtype}; actions must be integers 0..A-1"
        )
    top = num_actions if num_actions is not None else int(action.max()) + 1
    if action.min() < 0 or action.max() >= top:
        raise SelfsupError(
            f"{file}: '{keys[1]}' holds actions from {action.min()} to {action.max()}, outside "
            f"0..{top - 1} (num_actions {top}); actions are integers in [0, num_actions)"
        )
    given = arrays.get(f"{prefix}episode")
    episode = _episodes(obs, next_obs, given, file)
    return TransitionData(
        obs,
        torch.from_numpy(action.astype(np.int64)),
        next_obs,
        episode,
        _steps(episode),
        top,
        Path(file).stem,
    )


def load_transitions(path: str | None, options: DataConfig) -> DataSplits:
    """`transitions:FILE.npz`: `obs`, `action`, `next_obs` (+ optional `episode`, `num_actions`,
    `test_*`). Without test arrays a seeded 20 % of the episodes is held out, whole."""
    file = str(path)
    if not Path(file).is_file():
        raise SelfsupError(
            f"transitions:{file}: no such file; give an .npz of obs, action, next_obs"
        )
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise SelfsupError(f"transitions:{file} is not a readable .npz ({err})") from None
    missing = [k for k in ("obs", "action", "next_obs") if k not in arrays]
    if missing:
        raise SelfsupError(
            f"{file} lacks {', '.join(missing)} (it holds "
            f"{', '.join(sorted(arrays)) or 'nothing'}); "
            "a transitions file needs obs (N, C, H, W), action (N,) and next_obs (N, C, H, W)"
        )
    num_actions = None
    if "num_actions" in arrays:
        value = arrays["num_actions"]
        if value.shape != () or not np.issubdtype(value.dtype, np.integer) or int(value) < 1:
            raise SelfsupError(f"{file}: 'num_actions' must be one positive integer")
        num_actions = int(value)
    train = _read_part(arrays, "", file, num_actions)
    test_keys = [k for k in ("test_obs", "test_action", "test_next_obs") if k in arrays]
    if test_keys:
        if len(test_keys) < 3:
            raise SelfsupError(
                f"{file} has {', '.join(test_keys)} but not all of test_obs, test_action, "
                "test_next_obs; give all three or none"
            )
        test = _read_part(arrays, "test_", file, train.num_actions)
        if test.obs.shape[1:] != train.obs.shape[1:]:
            raise SelfsupError(
                f"{file}: test observations are {tuple(test.obs.shape[1:])}, training ones "
                f"{tuple(train.obs.shape[1:])}; give both the same shape"
            )
        return DataSplits(train, test, "its test_* arrays")
    episodes = int(train.episode.max()) + 1
    if episodes < 2:
        raise SelfsupError(
            f"{file} holds one episode; evaluation needs held-out episodes: give 'episode' ids, "
            "more episodes, or test_obs / test_action / test_next_obs"
        )
    gen = torch.Generator().manual_seed(HELDOUT_SEED)
    held = torch.randperm(episodes, generator=gen)[: max(1, round(HELDOUT_FRACTION * episodes))]
    is_test = torch.isin(train.episode, held)
    how = f"a seeded {100 * HELDOUT_FRACTION:g} % of its {episodes} episodes, held out whole"
    test = train.subset(is_test)
    test.episode = torch.unique_consecutive(test.episode, return_inverse=True)[1]
    return DataSplits(train.subset(~is_test), test, how)
