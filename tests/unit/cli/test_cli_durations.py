"""Durations on the command line: finite, not negative; an expiry more than nothing."""

from __future__ import annotations

import argparse

import pytest

from callhome.cli.main import EXIT_USAGE, _duration, _expiry, main


@pytest.mark.parametrize(("text", "seconds"), [("0", 0), ("90", 90), ("1.5m", 90), ("2h", 7200)])
def test_durations(text: str, seconds: float) -> None:
    assert _duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nan", "finite"),
        ("NaNm", "finite"),
        ("inf", "finite"),
        ("-infd", "finite"),
        ("-5", "negative"),
        ("-5m", "negative"),
        ("soon", "not a duration"),
    ],
)
def test_durations_that_are_not(text: str, why: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=why):
        _duration(text)


def test_an_expiry_is_more_than_nothing() -> None:
    assert _expiry("1s") == 1
    with pytest.raises(argparse.ArgumentTypeError, match="more than 0"):
        _expiry("0m")


@pytest.mark.parametrize("value", ["NaN", "-5", "-2h", "0"])
def test_expires_is_refused_before_anything_is_sent(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """No manager is needed: the refusal is a usage error, before any attempt to reach it."""
    with pytest.raises(SystemExit) as exited:
        main(["netconf", "dev1", f"--expires={value}", "get"])
    assert exited.value.code == EXIT_USAGE
    assert "argument --expires" in capsys.readouterr().err
