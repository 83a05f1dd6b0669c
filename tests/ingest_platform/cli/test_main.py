"""The command line as a whole: help that answers without the platform's heavy imports, and `db current`."""

import subprocess
import sys
from pathlib import Path

import pytest

from ingest_platform.cli import GROUPS, main

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
