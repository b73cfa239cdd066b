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
