"""Self-contained HTML reports for gankit run directories, and the plots they contain.

``build_report(run_dir)`` reads ``config.yaml``, ``metrics.jsonl`` and ``samples/`` and
writes ``run_dir/report.html``; ``plot_field`` draws a 2-D discriminator's probability
field with real and generated points (used for the samples of 2-D runs).
"""

from __future__ import annotations

from gankit.report.html import build_report, describe_equilibrium, read_metrics
from gankit.report.plots import plot_field

__all__ = ["build_report", "describe_equilibrium", "plot_field", "read_metrics"]
