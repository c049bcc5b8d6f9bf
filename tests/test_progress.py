"""Progress bars: live on a terminal, throttled in log files."""

from __future__ import annotations

import io
import sys
from types import SimpleNamespace

import pytest

from w2sg import progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_redraws_often_on_a_terminal_and_rarely_in_a_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert progress.progress_bar(5, "x", "it").mininterval == progress.TTY_INTERVAL_S
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    bar = progress.progress_bar(1000, "x", "it")
    assert bar.mininterval == progress.LOG_INTERVAL_S
    for _ in range(1000):
        bar.update(1)  # a fast loop: no line between the first and the last
    bar.close()
    lines = [line for line in log.getvalue().replace("\r", "\n").splitlines() if line.strip()]
    assert len(lines) <= 3 and "1000/1000" in lines[-1]


def test_disabled_bar_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    bar = progress.progress_bar(10, "x", "it", enabled=False)
    bar.update(10)
    bar.close()
    assert log.getvalue() == ""


def test_throttled_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    calls: list[float] = []
    bar = SimpleNamespace(mininterval=30.0, refresh=lambda: calls.append(clock[0]))
    refresh = progress.throttled_refresh(bar)
    for t in (100.0, 101.0, 129.9, 130.0, 131.0, 175.0):
        clock[0] = t
        refresh()
    assert calls == [100.0, 130.0, 175.0]
    disabled = progress.progress_bar(3, "x", "it", enabled=False)
    progress.throttled_refresh(disabled)()  # a disabled bar has no interval; nothing happens
