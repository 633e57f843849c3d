"""One rule for every figure shown (issue 19 item 10): shares of the queries in percent with the
unit in the column name, everything else a plain number; the rule reads the key's pattern."""

from selfsup.evaluate.suite import format_table
from selfsup.report import Panel, _evaluation_html, curve_panels
from selfsup.units import column, format_figure, is_percent


def test_the_rule_by_key_pattern():
    percent = ["knn_top1", "zeroshot_top5", "linear_top1", "i2t_r@10", "retrieval_recall@5"]
    percent += ["retrieval_hit-rate@5", "retrieval_success@10", "cpc_acc_k12", "token_accuracy"]
    plain = ["sts_spearman", "sts_pearson", "retrieval_mrr@10", "retrieval_ndcg@10"]
    plain += ["uniformity", "backbone_effective_rank", "linear_weight_decay", "loss"]
    plain += ["sts_spearman@main-news", "kept_tokens", "masked_fraction"]
    assert all(is_percent(k) for k in percent) and not any(is_percent(k) for k in plain)
    assert column("zeroshot_top5") == "zeroshot_top5 (%)" and column("mrr@10") == "mrr@10"
    assert format_figure("zeroshot_top5", 0.8175) == "81.75"
    assert format_figure("sts_spearman", 0.81234567) == "0.8123"
    assert format_figure("knn_top1", None) == "-"


def test_console_table_and_report_table_follow_it():
    results = {
        "queries": "x: its test split",
        "selfsup": {"zeroshot_top1": 0.215, "zeroshot_top5": 0.8175, "i2t_r@1": 0.5},
        "random": {"zeroshot_top1": 0.1, "zeroshot_top5": 0.5, "i2t_r@1": 0.25},
    }
    table = format_table(results)
    head, learned = table.splitlines()[:2]
    assert head.split() == ["zeroshot_top1", "(%)", "zeroshot_top5", "(%)", "i2t_r@1", "(%)"]
    assert learned.split() == ["selfsup", "21.50", "81.75", "50.00"]  # no "%" cells, no 0.8175
    page = _evaluation_html(results, {})
    assert "<th>zeroshot_top5 (%)</th>" in page and ">81.75<" in page and "0.8175" not in page
    # one row per figure, one column per encoder: the table stays narrow
    assert page.count("<tr>") == 1 + 3 and "class='wide'" in page


def test_cpc_step_accuracies_share_one_panel_in_numeric_order():
    """Item 11: k1, k2, ..., k10, k11, k12, not k1, k10, k11, k12, k2."""
    records = [
        {"kind": "train", "step": s, "loss": 1.0} | {f"cpc_acc_k{k}": 0.5 for k in range(1, 13)}
        for s in (1, 2)
    ]
    panels = [p for p in curve_panels(records) if p.keys[0].startswith("cpc")]
    assert panels == [Panel("train", tuple(f"cpc_acc_k{k}" for k in range(1, 13)), "cpc acc k (%)")]
