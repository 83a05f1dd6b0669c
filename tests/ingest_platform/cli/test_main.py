"""The command line as a whole: help that answers without the platform's heavy imports, and `db current`."""

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from ingest_platform.cli import GROUPS, build_parser, main

REPO = Path(__file__).resolve().parents[3]
# What printing the help must not import: each costs a second or more of start-up.
HEAVY = ("dagster", "sqlalchemy", "httpx", "stripe", "elasticsearch", "playwright")


def test_help_lists_every_group_and_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from ingest_platform.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('HEAVY', sorted(name for name in {HEAVY!r} if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout
    for group, description in GROUPS.items():
        assert group in done.stdout
        assert description.split()[0] in done.stdout
    assert "seed" not in done.stdout.lower()


@pytest.mark.parametrize("group", sorted(GROUPS), ids=sorted(GROUPS))
def test_each_groups_help_shows_its_commands(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([group, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ingest-platform {group} ")


def test_db_current_says_what_each_revision_is_and_whether_it_is_applied(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "current"]) == 0
    before = capsys.readouterr().out
    assert "no migration applied yet" in before
    assert "0001  pending    Foundation" in before

    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["db", "current"]) == 0
    after = capsys.readouterr().out
    assert "pending" not in after
    assert "0001  applied    Foundation" in after
    assert "0008  applied" in after


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every (command path, parser, its entry in the parent's list) below `parser`, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield (*path, name), child, listed.get(name)
                yield from _commands(child, (*path, name))


COMMANDS = list(_commands(build_parser()))
ARGUMENTS = [
    (path, action)
    for path, parser, _ in COMMANDS
    for action in parser._actions
    if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
]


def test_the_walk_reaches_every_group_and_their_commands() -> None:
    paths = {path for path, _, _ in COMMANDS}
    assert {(group,) for group in GROUPS} <= paths
    assert {("db", "upgrade"), ("vivenu", "pull"), ("app", "ip-hash"), ("rtarf", "schedule")} <= paths
    assert len(ARGUMENTS) > 30


@pytest.mark.parametrize(("path", "parser", "listed"), COMMANDS, ids=[" ".join(c[0]) for c in COMMANDS])
def test_every_command_has_a_one_line_summary_in_its_group_and_its_own_help(path, parser, listed) -> None:
    assert listed and "\n" not in listed, f"{' '.join(path)} has no summary in its group's list"
    assert parser.description, f"`{' '.join(path)} --help` says nothing about what it does"
    for text in (listed, parser.description):
        assert "seed" not in text.lower()


@pytest.mark.parametrize(
    ("path", "action"), ARGUMENTS, ids=[f"{' '.join(path)} {a.option_strings or a.dest}" for path, a in ARGUMENTS]
)
def test_every_argument_says_what_it_is(path, action) -> None:
    assert action.help and action.help.strip(), f"{' '.join(path)}: {action.option_strings or action.dest} has no help"
    assert "\n" not in action.help
    assert "seed" not in action.help.lower()
