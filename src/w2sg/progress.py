"""Progress bars on stderr: live on a terminal, a line every 30 s in a log file.

Every long loop of w2sg (extraction, sweeps, pretraining) reports through :func:`progress_bar`,
so counts, rate and ETA look the same everywhere. When stderr is not a terminal (``make`` piped to
a file, a cluster job), redrawing every half second would write thousands of lines; the bar then
prints at most once per :data:`LOG_INTERVAL_S` seconds, and :func:`throttled_refresh` does the
same for the refreshes a caller asks for between updates (elapsed time while a run is busy).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

#: Seconds between two printed lines when stderr is not a terminal.
LOG_INTERVAL_S = 30.0
#: Seconds between two redraws on a terminal.
TTY_INTERVAL_S = 0.5


def interactive() -> bool:
    """Whether stderr is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def progress_bar(total: int, desc: str, unit: str, *, enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm bar on stderr, disabled when ``enabled`` is false."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        mininterval=TTY_INTERVAL_S if interactive() else LOG_INTERVAL_S,
        **kwargs,
    )


def throttled_refresh(bar: Any) -> Callable[[], None]:
    """``bar.refresh``, but at most once per the bar's ``mininterval`` (a no-op when disabled)."""
    last = [0.0]
    if getattr(bar, "disable", False):
        return lambda: None
    interval = float(bar.mininterval)

    def refresh() -> None:
        now = time.monotonic()
        if now - last[0] >= interval:
            last[0] = now
            bar.refresh()

    return refresh
