"""Reports: PNG figures (matplotlib, Agg) and one HTML page for a run folder or a results store.

``build_report(source, out)`` is what ``w2sg report`` calls; :mod:`w2sg.report.plots` has one
function per figure.
"""

from w2sg.report.build import OPTIONAL_SECTIONS, SECTIONS, bound_checks, build_report

__all__ = ["OPTIONAL_SECTIONS", "SECTIONS", "bound_checks", "build_report"]
