"""Every command in README.md is real: it names an existing sub-command, its flags parse, the
files it points at exist, and the cheap ones (``--help``, ``--version``, ``neurofm info``) run.

Nothing here installs packages or starts a long job: ``pip`` lines are skipped, and long commands
(``neurofm demo``, ``prepare``, ``pretrain`` …) are only parsed, never run.
"""

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from neurofm.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
#: The README whose commands are checked.
READMES = [ROOT / "README.md"]
#: Commands run for real (fast, no side effects outside a temporary folder).
CHEAP = {"info"}
#: Packages a cheap command's data needs (skipped when absent).
NEEDS = {"sample:emotiv14": "spkit"}


def bash_blocks(text: str) -> list[str]:
    """Bodies of the fenced ``bash``/``sh``/``shell`` code blocks."""
    return re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, re.DOTALL)


def shell_commands(block: str) -> list[list[str]]:
    """Commands of a bash block as argv lists (continuations joined, comments and shell
    builtins dropped, ``&&``/``;`` split)."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"&&|;", line):
            argv = shlex.split(part, comments=True)
            if argv and "=" not in argv[0]:
                commands.append(argv)
    return commands


def neurofm_commands(text: str) -> list[list[str]]:
    """``neurofm ...`` argv lists (without the program name) from the README's bash blocks."""
    return [argv[1:] for block in bash_blocks(text) for argv in shell_commands(block)
            if argv[0] == "neurofm"]


def mentioned_commands(text: str) -> set[str]:
    """Sub-command names written as `` `neurofm NAME`` in prose, tables or code."""
    names = set(re.findall(r"`neurofm ([a-z][\w-]*)", text))
    names |= {argv[0] for argv in neurofm_commands(text) if argv and not argv[0].startswith("-")}
    return names


def subcommands(parser) -> dict:
    """Sub-command name -> its parser."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    return {}


def command_path(argv: list[str]) -> list[str]:
    """The sub-command words at the start of ``argv`` (``["hub", "push"]``, ``["info"]``)."""
    parser, path = build_parser(), []
    for word in argv:
        choices = subcommands(parser)
        if word not in choices:
            break
        path.append(word)
        parser = choices[word]
    return path


def readme_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(params=READMES, ids=readme_id)
def readme(request) -> str:
    return request.param.read_text(encoding="utf-8")


def test_readme_has_ci_blocks_that_ci_reads(readme):
    # .ci/run reads the block after each marker: install + main job, then the test command.
    setup = re.search(r"<!-- ci:setup -->\s*```[a-z]*\n(.*?)```", readme, re.DOTALL)
    test = re.search(r"<!-- ci:test -->\s*```[a-z]*\n(.*?)```", readme, re.DOTALL)
    assert setup and test
    install, main_job = setup.group(1).strip().splitlines()[:2]
    assert install.startswith("pip install")
    assert main_job.startswith("neurofm ")
    assert "pytest" in test.group(1)


def test_every_neurofm_command_named_in_readme_exists(readme):
    known = set(subcommands(build_parser()))
    named = mentioned_commands(readme)
    assert named, "README names no neurofm command"
    assert named <= known, f"README names commands the CLI lacks: {sorted(named - known)}"


def test_every_readme_command_line_parses_and_its_files_exist(readme):
    parser = build_parser()
    commands = neurofm_commands(readme)
    assert commands
    for argv in commands:
        if argv in (["--help"], ["--version"]):
            continue
        args = parser.parse_args(argv)  # SystemExit (exit 2) on an unknown flag or choice
        assert getattr(args, "func", None), f"`neurofm {' '.join(argv)}` runs no command"
        config = getattr(args, "config", None)
        if config:
            assert (ROOT / config).is_file(), f"`neurofm {' '.join(argv)}`: no file {config}"


def test_torchrun_lines_point_at_real_configs(readme):
    for block in bash_blocks(readme):
        for argv in shell_commands(block):
            if argv[0] in ("torchrun", "srun") and "neurofm.pretrain" in argv:
                config = argv[argv.index("--config") + 1]
                assert (ROOT / config).is_file(), f"{' '.join(argv)}: no file {config}"


def test_help_of_every_command_in_readme_runs(readme, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    paths = {tuple(command_path(argv)) for argv in neurofm_commands(readme)}
    paths |= {(name,) for name in mentioned_commands(readme)}
    for path in sorted(p for p in paths if p):
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0, path
        assert "usage: neurofm " + " ".join(path) in capsys.readouterr().out


def test_cheap_readme_commands_run(readme, capsys):
    ran = 0
    for argv in neurofm_commands(readme):
        if argv == ["--version"]:
            with pytest.raises(SystemExit):
                main(argv)
            continue
        if command_path(argv)[:1] != ["info"]:
            continue
        needed = [NEEDS[a] for a in argv if a in NEEDS]
        if any(importlib.util.find_spec(pkg) is None for pkg in needed):
            continue
        assert main(argv) == 0, capsys.readouterr().err
        assert "Sampling rate" in capsys.readouterr().out
        ran += 1
    if not any(a[:1] == ["info"] for a in neurofm_commands(readme)):
        pytest.skip("README shows no `neurofm info` command to run")
    if ran == 0:
        pytest.skip("the data of README's `neurofm info` commands is not installed")
