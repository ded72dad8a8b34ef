"""Self-contained HTML reports for gankit run directories, and the plots they contain.

``build_report(run_dir)`` reads ``config.yaml``, ``metrics.jsonl`` and ``samples/`` (through
``gankit.rundir.RunDir``) and writes ``run_dir/report.html``; ``plot_field`` draws a 2-D
discriminator's probability field with real and generated points (used for the samples of 2-D
runs). The report's reading of D(x) and D(G(z)) is ``gankit.verdict.equilibrium``, the same as
``gankit doctor``'s. Nothing here imports ``gankit.train``.
"""

from __future__ import annotations

from gankit.report.html import build_report
from gankit.report.plots import plot_field

__all__ = ["build_report", "plot_field"]
