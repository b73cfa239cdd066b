"""Colour and progress follow one rule everywhere: a terminal, and `NO_COLOR` unset or empty."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner

import engine.terminal
from engine.cli import main
from engine.terminal import use_color

ESC = "\x1b["

COLOURING_COMMANDS = [
    ["check", "fixtures/errors/unknown-fact.policy"],
    ["lint", "fixtures/errors/unknown-fact.policy"],
    ["diff", "policies/ear-742.7@2020-03-09", "@2020-10-06", "--cases", "fixtures/cases"],
    ["eval", "fixtures/errors/unknown-fact.policy", "fixtures/cases/handcuffs-canada-police.json"],
]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_color_set_and_not_empty_turns_colour_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(_Tty()) is True
    assert use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(_Tty()) is False
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: an empty value does not count
    assert use_color(_Tty()) is True


@pytest.mark.parametrize("args", COLOURING_COMMANDS, ids=lambda a: a[0])
def test_every_colouring_command_honours_no_color(
    args: list[str], in_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a (pretend) terminal each command paints; with NO_COLOR none of them does."""
    monkeypatch.setattr(engine.terminal, "_is_tty", lambda stream: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    painted = CliRunner().invoke(main, args, color=True)
    assert ESC in painted.output, painted.output
    monkeypatch.setenv("NO_COLOR", "1")
    plain = CliRunner().invoke(main, args, color=True)
    assert ESC not in plain.output
    assert plain.exit_code == painted.exit_code


def test_counter_draws_only_on_a_terminal_and_erases_itself() -> None:
    from engine.terminal import Counter

    tty, pipe = _Tty(), io.StringIO()
    for stream in (tty, pipe):
        with Counter("work:", 3, stream=stream, interval=0) as counter:
            for name in ("a", "b", "c"):
                counter.step(name)
    assert pipe.getvalue() == ""
    drawn = tty.getvalue()
    assert "\rwork: 1/3 a" in drawn and "\rwork: 3/3 c" in drawn
    assert drawn.endswith("\r" + " " * len("work: 1/3 a") + "\r")
    assert ESC not in drawn  # carriage returns and spaces only


PROGRESS_COMMANDS = [
    (["test"], "policy test:"),
    (["lint", "policies"], "policy lint:"),
    (["diff", "policies/ear-742.7@2020-03-09", "@2020-10-06", "--cases", "fixtures/cases"], "policy diff:"),
]


@pytest.mark.parametrize(
    ("args", "prefix"), PROGRESS_COMMANDS, ids=lambda a: a[0] if isinstance(a, list) else ""
)
def test_diff_test_and_lint_show_progress_on_stderr_only_on_a_terminal(
    args: list[str], prefix: str, in_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine.terminal, "_is_tty", lambda stream: True)
    watched = CliRunner().invoke(main, args)
    assert f"\r{prefix} 1/" in watched.stderr and "\r" not in watched.stdout
    monkeypatch.setattr(engine.terminal, "_is_tty", lambda stream: False)
    piped = CliRunner().invoke(main, args)
    assert prefix not in piped.stderr
    assert piped.stdout == watched.stdout
