"""Classical embeddings of the raw input as baseline rows: PCA, metric MDS, Isomap and locally
linear embedding, the precursors a learned encoder should beat (issue 27).

Each is fitted on the bank's raw features (the raw row's own: standardised pixels, z-normalised
series), applied to the queries, and its features are scored by the protocols like an
encoder's. PCA fits the whole bank; MDS, Isomap and LLE, which cost O(n^2) memory and up to
O(n^3) time, fit a seeded sample of `eval.baseline_fit_samples` bank rows and place the other
bank rows and the queries out of sample. No query ever takes part in a fit. Selected with
`eval.baselines=pca,mds,isomap,lle`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from selfsup.errors import SelfsupError

Transform = Callable[[np.ndarray], np.ndarray]
MDS_PLACE_ITERS = 100  # stress-majorisation steps placing each out-of-sample row (MDS)
MDS_PLACE_CHUNK = 4096  # rows placed at a time
PLACE_TOL = 1e-6  # placing stops when no coordinate moves more than this times the layout's size


def _pca(x: np.ndarray, dim: int, neighbors: int, seed: int) -> tuple[np.ndarray, Transform]:
    from sklearn.decomposition import PCA  # lazily: sklearn is heavy

    pca = PCA(n_components=dim, random_state=seed).fit(x)
    return pca.transform(x), pca.transform


def _isomap(x: np.ndarray, dim: int, neighbors: int, seed: int) -> tuple[np.ndarray, Transform]:
    from sklearn.manifold import Isomap

    while True:  # geodesic distances are not Euclidean: their kernel may have few positive
        try:  # eigenvalues, and KernelPCA refuses a width that reaches negative ones
            iso = Isomap(n_neighbors=neighbors, n_components=dim)
            return iso.fit_transform(x), iso.transform
        except ValueError as err:
            if "negative eigenvalues" not in str(err) or dim == 1:
                raise
            dim = (dim + 1) // 2


def _lle(x: np.ndarray, dim: int, neighbors: int, seed: int) -> tuple[np.ndarray, Transform]:
    from sklearn.manifold import LocallyLinearEmbedding

    # dense: ARPACK fails to converge on LLE's near-singular matrix at some sizes
    lle = LocallyLinearEmbedding(
        n_neighbors=neighbors, n_components=dim, eigen_solver="dense", random_state=seed
    )
    return lle.fit_transform(x), lle.transform


def classical_mds(distances: np.ndarray, dim: int) -> np.ndarray:
    """Torgerson's classical MDS of a distance matrix: the top `dim` eigenvectors of the
    double-centred squared distances, scaled by the square roots of their eigenvalues (those
    below zero count as zero). SMACOF's start here."""
    n = len(distances)
    centre = np.eye(n) - 1.0 / n
    gram = -0.5 * centre @ (distances**2) @ centre
    values, vectors = np.linalg.eigh(gram)
    top = np.argsort(values)[::-1][:dim]
    return vectors[:, top] * np.sqrt(np.clip(values[top], 0, None))


def place_out_of_sample(
    rows: np.ndarray, landmarks: np.ndarray, coords: np.ndarray, iters: int = MDS_PLACE_ITERS
) -> np.ndarray:
    """Coordinates of `rows` in a fitted metric-MDS embedding: each row alone minimises its
    stress sum_i (d(row, landmark_i) - |z - coords_i|)^2 against the fixed landmark coordinates
    by the Guttman transform (SMACOF's update with the landmarks held still), from the nearest
    landmark's coordinates, for `iters` steps or until no row moves. The landmarks never move:
    rows placed cannot change each other."""
    from scipy.spatial.distance import cdist  # single-threaded: these are many small steps

    marks = np.ascontiguousarray(landmarks, dtype=np.float64)
    fixed = np.ascontiguousarray(coords, dtype=np.float64)
    mean = fixed.mean(axis=0)
    scale = float(np.abs(fixed - mean).max()) or 1.0
    out = np.empty((len(rows), fixed.shape[1]))
    for start in range(0, len(rows), MDS_PLACE_CHUNK):
        part = np.asarray(rows[start : start + MDS_PLACE_CHUNK], dtype=np.float64)
        target = cdist(part, marks)  # (n, m) dissimilarities to the landmarks
        z = fixed[target.argmin(axis=1)].copy()
        active = np.arange(len(z))  # rows still moving: each stops on its own, so that
        for _ in range(iters):  # no row's place depends on the others placed with it
            if not len(active):
                break
            now, goal = z[active], target[active]
            d = cdist(now, fixed)
            b = np.divide(goal, d, out=np.zeros_like(d), where=d > 0)
            step = mean + now * b.mean(axis=1, keepdims=True) - b @ fixed / len(fixed)
            z[active] = step
            active = active[np.abs(step - now).max(axis=1) > PLACE_TOL * scale]
        out[start : start + len(part)] = z
    return out


def _mds(x: np.ndarray, dim: int, neighbors: int, seed: int) -> tuple[np.ndarray, Transform]:
    from sklearn.manifold import smacof
    from sklearn.metrics import pairwise_distances

    distances = pairwise_distances(x)
    coords, _ = smacof(
        distances,
        metric=True,
        n_components=dim,
        init=classical_mds(distances, dim),
        n_init=1,
        random_state=seed,
        normalized_stress=False,
    )
    return coords, lambda rows: place_out_of_sample(rows, x, coords)


@dataclass(frozen=True)
class Classical:
    """A classical embedding: its report title, whether it fits the whole bank (`scales`) or
    a sample of it, how it places rows it was not fitted on, and `fit(x, dim, neighbors, seed)
    -> (embedding of x, transform of other rows)`."""

    name: str
    title: str
    scales: bool
    out_of_sample: str
    fit: Callable[[np.ndarray, int, int, int], tuple[np.ndarray, Transform]]
    uses_neighbors: bool = False


CLASSICAL: dict[str, Classical] = {
    c.name: c
    for c in (
        Classical(
            "pca",
            "PCA of the raw input (fitted on the bank)",
            True,
            "projected on the bank's components",
            _pca,
        ),
        Classical(
            "mds",
            "metric MDS of the raw input (SMACOF on bank landmarks, the rest placed out of sample)",
            False,
            "placed one by one against the fixed landmarks (out-of-sample stress majorisation)",
            _mds,
        ),
        Classical(
            "isomap",
            "Isomap of the raw input (fitted on bank rows, the rest placed out of sample)",
            False,
            "placed by Isomap's transform (geodesics through the fitted graph)",
            _isomap,
            uses_neighbors=True,
        ),
        Classical(
            "lle",
            "locally linear embedding of the raw input (fitted on bank rows, the rest placed "
            "out of sample)",
            False,
            "placed by LLE's transform (barycentric weights of their fitted neighbours)",
            _lle,
            uses_neighbors=True,
        ),
    )
}
TITLES = {c.name: c.title for c in CLASSICAL.values()}


def classical_names(setting: bool | Sequence[str]) -> tuple[str, ...]:
    """The classical rows an `eval.baselines` value asks for: none for true / false."""
    if isinstance(setting, bool):
        return ()
    return tuple(dict.fromkeys(setting))


def check_baselines(setting: bool | Sequence[str]) -> None:
    """One SelfsupError for an `eval.baselines` value that names an unknown classical
    embedding or names none, before any data is decoded."""
    if isinstance(setting, bool):
        return
    valid = f"true, false, or classical embeddings among {', '.join(CLASSICAL)}"
    unknown = [n for n in setting if n not in CLASSICAL]
    if unknown or not setting:
        got = f"unknown {', '.join(map(repr, unknown))}" if unknown else "no names"
        raise SelfsupError(
            f"bad config value: eval.baselines ({got}) must be {valid} (comma separated, e.g. "
            "--set eval.baselines=pca,isomap; they come beside the random and raw-input rows)"
        )


def check_classical_input(setting: bool | Sequence[str], modality: Any, source: str) -> None:
    """Refuse classical rows for a modality whose raw input is not a fixed-width vector (text),
    before any data is decoded."""
    if not isinstance(setting, bool) and not modality.classical_input:
        raise refusal(setting, modality, source)


def refusal(names: Sequence[str], modality: Any, source: str) -> SelfsupError:
    """The error for classical rows asked of a modality whose raw input is not a fixed-width
    vector (text: TF-IDF of a vocabulary, already the classical baseline)."""
    return SelfsupError(
        f"eval.baselines={','.join(names)}: the classical embeddings need a fixed-width raw "
        f"input (images, series); {source} is {modality.name} data, whose raw row "
        f"({modality.raw_row}) is already the classical baseline. Use eval.baselines=true"
    )


def classical_width(dim: int, rows: int, features: int, scales: bool) -> int:
    """The embedding's width: `dim`, capped at the input's features and at the rows fitted on
    (less one where an eigenproblem drops the constant vector)."""
    return max(1, min(dim, features, rows if scales else rows - 1))


def embed_raw(
    name: str,
    bank: Tensor,
    queries: Tensor | None,
    *,
    dim: int,
    fit_samples: int,
    neighbors: int,
    seed: int,
    dim_from: str = "eval.baseline_dim",
) -> tuple[Tensor, Tensor | None, str]:
    """The classical embedding `name` of raw features: fitted on `bank` (or a seeded sample of
    `fit_samples` of its rows when the method does not scale), the other bank rows and the
    `queries` placed by its out-of-sample transform, which never refits; input columns constant
    on the bank are left out (they carry nothing to fit). Returns the bank's and
    the queries' embeddings (float32) and the line that says how."""
    from selfsup.modalities.raw import sample_rows

    method = CLASSICAL[name]
    # Columns constant on the bank carry nothing to fit (digits: 4 pixels always 0 in the bank).
    varying = bank.std(dim=0, correction=0) > 0
    if not bool(varying.any()):
        raise SelfsupError("the raw input is the same for every bank row: nothing to fit")
    x = bank[:, varying].double().numpy()
    if queries is not None:
        queries = queries[:, varying]
    n = len(x)
    if method.scales or n <= fit_samples:
        fit_rows = np.arange(n)
        on = f"the {n:,} bank rows"
    else:
        fit_rows = sample_rows(n, fit_samples, None, seed).numpy()
        on = f"a seeded sample of {fit_samples:,} of the {n:,} bank rows"
    width = classical_width(dim, len(fit_rows), x.shape[1], method.scales)
    k = min(neighbors, len(fit_rows) - 1)
    fitted, transform = method.fit(x[fit_rows], width, k, seed)
    out = np.empty((n, fitted.shape[1]))
    out[fit_rows] = fitted
    rest = np.setdiff1d(np.arange(n), fit_rows)
    if len(rest):
        out[rest] = transform(x[rest])
    placed = None if queries is None else transform(queries.double().numpy())
    if fitted.shape[1] < width:
        width = fitted.shape[1]
        capped = f" ({dim_from} {dim}, halved until Isomap's geodesic kernel "
        capped += "had that many positive eigenvalues)"
    elif width < dim:
        cap = f"the {x.shape[1]} input columns varying on the bank"
        if width < x.shape[1]:
            cap = f"the {len(fit_rows)} rows fitted on" + (" less one" if not method.scales else "")
        capped = f" ({dim_from} {dim}, capped at {cap})"
    else:
        capped = f" ({dim_from})"
    near = f", {k} neighbours" if method.uses_neighbors else ""
    placed_rows = [
        w for w, y in (("the other bank rows", len(rest)), ("the queries", placed is not None)) if y
    ]
    dropped = int((~varying).sum())
    of = f" ({dropped} input columns constant on the bank left out)" if dropped else ""
    line = f"{width} dims{capped}{near}, fitted on {on}{of}"
    if placed_rows:
        line += f"; {' and '.join(placed_rows)} {method.out_of_sample}"
    as_tensor = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32))  # noqa: E731
    return as_tensor(out), None if placed is None else as_tensor(placed), line


def classical_rows(
    names: Sequence[str],
    modality: Any,
    raw: Any,
    cfg: Any,
    protocols: Sequence[str],
    width: int,
) -> tuple[dict[str, dict[str, float]], str | None]:
    """The rows of the classical embeddings `names` on `raw` (a `suite.EvalData`, already
    bounded by eval.raw_bank_limit), scored by `protocols` (those that do not train an encoder),
    at `eval.baseline_dim` or else `width` (the learned encoder's), and one line saying how each
    was fitted; a method that cannot embed these rows (sklearn refuses them, or its embedding is
    not finite) gets no row, and the line says why."""
    from selfsup.evaluate.registry import PROTOCOLS, run_protocols

    protocols = tuple(p for p in protocols if not PROTOCOLS[p].uses_encoder)
    if not names or not protocols:
        return {}, None
    if not modality.classical_input:  # config.validate refuses this before data is read
        raise refusal(names, modality, cfg.eval.data or cfg.data.source)
    e = cfg.eval
    same = raw.queries is raw.bank  # no held-out queries: label protocols are withheld
    bank, queries = modality.raw_features(raw.bank, raw.queries, with_bank=True)
    rows: dict[str, dict[str, float]] = {}
    said = []
    for name in names:
        try:
            z_bank, z_queries, line = embed_raw(
                name,
                bank,
                None if same else queries,
                dim=e.baseline_dim or width,
                fit_samples=e.baseline_fit_samples,
                neighbors=e.baseline_neighbors,
                seed=cfg.train.seed,
                dim_from="eval.baseline_dim" if e.baseline_dim else "the learned encoder's width",
            )
        except SelfsupError as err:
            said.append(f"{name}: not scored, {err}")
            continue
        except (ValueError, np.linalg.LinAlgError) as err:
            said.append(f"{name}: not scored, sklearn could not fit it on these rows ({err})")
            continue
        z_queries = z_bank if same else z_queries
        if not (torch.isfinite(z_bank).all() and torch.isfinite(z_queries).all()):
            said.append(f"{name}: not scored, its embedding of these rows is not finite")
            continue
        rows[name] = run_protocols(
            raw.features(z_queries, z_bank, cfg),
            protocols,
            f"the {name!r} baseline ({TITLES[name]})",
        )
        said.append(f"{name}: {line}")
    return rows, "; ".join(said) or None
