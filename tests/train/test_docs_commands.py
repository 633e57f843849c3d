"""Every `selfsup ...` command the README and docs show is one the command line takes as written
(issue 19, "Done"): it parses, and a `pretrain` command passes every check made before data
is read (config keys and values, the method's parameters, the method serving the data's
modality). Placeholders (PATH, RUN, DIR) stand as they are: no data is read here; the commands
that train are covered by their own tests on tiny data."""

import re
import shlex
from pathlib import Path

import pytest

from selfsup.cli import build_parser, pretrain_config
from selfsup.data.registry import source_modality
from selfsup.methods import get_method
from selfsup.modalities import get_modality
from selfsup.run import _check_method_fits

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _code_lines(text: str) -> list[str]:
    """Lines of fenced blocks and of 4-space indented blocks, continuation lines joined."""
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    blocks += ["\n".join(m) for m in re.findall(r"((?:^    \S.*\n)+)", text, re.M)]
    lines = []
    for block in blocks:
        lines += [line.strip() for line in block.replace("\\\n", " ").splitlines()]
    return lines


def _commands() -> list[tuple[str, list[str]]]:
    """(page, argv) of every selfsup command shown (after && or |), comments dropped."""
    found = []
    for page in PAGES:
        for line in _code_lines(page.read_text()):
            if "selfsup " not in line or line.startswith(("import ", "from ", "torchrun")):
                continue
            for part in re.split(r"&&|\|(?![^']*'\s)", line):
                try:
                    argv = shlex.split(part, comments=True)
                except ValueError:
                    continue
                if argv[:1] == ["selfsup"] and "..." not in argv:
                    found.append((page.name, argv[1:]))
    return found


COMMANDS = _commands()


def test_the_pages_show_commands():
    assert len(COMMANDS) > 30
    assert any(argv[:1] == ["search"] and not argv[2].startswith("-") for _, argv in COMMANDS)


@pytest.mark.parametrize(("page", "argv"), COMMANDS, ids=[" ".join(a) for _, a in COMMANDS])
def test_a_documented_command_is_accepted(page, argv):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"{page}: `selfsup {' '.join(argv)}` is a usage error")
    if args.command != "pretrain":
        return
    cfg, _ = pretrain_config(args)
    method = get_method(cfg.method.name)
    method.make_config(cfg.method.params)
    _check_method_fits(method, get_modality(source_modality(cfg.data.source)), cfg.data.source)
