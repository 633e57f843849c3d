"""How every figure is shown, in the console table, the report and its curves: one rule, read
from the figure's name alone.

A figure that is a share of the queries (an accuracy: top-1, top-5, a pretext or per-step
accuracy; a recall, hit rate or success at k; precision at k) is shown in percent with two
decimals, and its column or panel title carries the unit: "knn_top1 (%)". Every other figure
(Spearman and Pearson correlations, MRR, nDCG, alignment, uniformity, std, effective rank,
weight decay, loss) is a plain number with four significant digits and no unit. eval.json keeps
every figure as it was measured (fractions in [0, 1]); only the display multiplies by 100.
Because the rule reads the name's pattern, figures named later (`..._hit@5`, `..._success@10`,
BEIR's `..._recall@100` and `..._recall_cap@100`) fit it without a change here.
"""

from __future__ import annotations

import math
import re
from typing import Any

# Names of shares of the queries, matched at the end of a figure's name.
PERCENT_NAMES = re.compile(
    r"(top\d+|accuracy|acc|acc_k\d+|(^|_)r@\d+"
    r"|(recall|recall_cap|hit|hit[-_]?rate|success|precision)@\d+)$"
)


def is_percent(key: str) -> bool:
    """Whether the figure `key` is a share of the queries, shown in percent."""
    return bool(PERCENT_NAMES.search(key))


def column(key: str) -> str:
    """The name a figure's column or panel carries: its key, with " (%)" for a percentage."""
    return f"{key} (%)" if is_percent(key) else key


def shown_value(key: str, value: float) -> float:
    """The number as displayed: x 100 for a percentage."""
    return 100 * value if is_percent(key) else value


def format_figure(key: str, value: Any) -> str:
    """One figure as text under its `column`: "57.38" for a percentage (the unit is in the
    column name), "0.8175" for a plain number, "-" when there is none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{100 * value:.2f}" if is_percent(key) else f"{value:.4g}"


UNIT_NOTE = (
    "Columns marked (%) are percentages of the queries (accuracy, recall / hit rate at k); the "
    "other figures are plain numbers (correlations, MRR, uniformity, std, rank)."
)
