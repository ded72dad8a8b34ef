"""Self-contained HTML reports for gankit run directories, and the plots they contain.

``build_report(run_dir)`` reads ``config.yaml``, ``metrics.jsonl`` and ``samples/`` (through
``gankit.rundir.RunDir``) and writes ``run_dir/report.html``, which leads with the result: a summary
(what ran, how far, D's equilibrium verdict, any failure warning still active), the latest samples
large, the curves, the evaluations as a table, the diagnosis, the samples over time, and the config
folded away. ``plot_field`` draws a 2-D discriminator's probability field with real and generated
points (used for the samples of 2-D runs).

Modules: ``html`` (the page), ``parts`` (its sections), ``records`` (what is read from
metrics.jsonl: curves, evaluation tables, the diagnosis), ``plots`` (the pictures). The reading of
D(x) and D(G(z)) is ``gankit.verdict.equilibrium``, and of failures ``gankit.diagnosis`` (imported
only when a report is built), the same as ``gankit doctor``'s. Nothing here imports ``gankit.train``.
"""

from __future__ import annotations

from gankit.report.html import build_report
from gankit.report.plots import plot_field

__all__ = ["build_report", "plot_field"]
