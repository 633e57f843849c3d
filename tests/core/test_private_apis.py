"""No private API of torch or numpy in src (issue 20, item 5), and the public EMA helper gives
the teacher exactly what a per-tensor lerp gives."""

import ast
from pathlib import Path

import torch
from torch import nn

from selfsup.models import ema_update, momentum_teacher

SRC = Path(__file__).resolve().parents[2] / "src" / "selfsup"
LIBRARIES = {"torch", "np", "numpy", "nn", "F", "torch_dist", "dist"}


def private_reaches(tree: ast.AST) -> list[str]:
    """`library._name` attributes (dunders aside) read in one module's syntax tree."""
    return [
        f"{node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in LIBRARIES
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]


def test_src_reads_no_private_torch_or_numpy_attribute():
    found = {
        f"{path.relative_to(SRC)}: {reach}"
        for path in SRC.rglob("*.py")
        for reach in private_reaches(ast.parse(path.read_text()))
    }
    assert not found, sorted(found)


def test_the_scan_sees_a_private_reach():
    found = private_reaches(ast.parse("torch._foreach_lerp_(a, b, 0.1)\nnp._core.multiarray"))
    assert sorted(found) == ["np._core", "torch._foreach_lerp_"]


def test_ema_update_equals_a_per_tensor_lerp_bit_for_bit():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Linear(7, 33), nn.ReLU(), nn.Linear(33, 5))
    teacher = momentum_teacher(student)
    expected = momentum_teacher(student)
    for step in range(5):
        with torch.no_grad():
            for p in student.parameters():
                p.add_(torch.randn_like(p))
        ema_update(teacher, student, 0.996 - 0.01 * step)
        with torch.no_grad():
            for e, s in zip(expected.parameters(), student.parameters(), strict=True):
                e.lerp_(s, 1.0 - (0.996 - 0.01 * step))
    for t, e in zip(teacher.parameters(), expected.parameters(), strict=True):
        assert torch.equal(t, e)
