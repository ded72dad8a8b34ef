"""Self-contained HTML reports for gankit run directories, and the plots they contain.

``build_report(run_dir)`` writes ``run_dir/report.html``: the page of ``gankit lab`` exported
(``page.export_html``: self-contained, no server, the same uPlot charts, led by the latest samples
and the D(x)/D(G(z)) chart), with the summary (D's equilibrium verdict, active warnings), the
evaluations as a table, the diagnosis and the config folded away below it. ``plot_field`` draws a
2-D discriminator's probability field with real and generated points (the samples of 2-D runs).

Modules: ``page`` (the lab's page exported; ``static/`` its files, served by the lab too), ``runs``
and ``tail`` (what is read of runs for the page), ``html`` (report.html), ``parts`` (the sections
below the page), ``records`` (what is read from metrics.jsonl: evaluation tables, the diagnosis),
``plots`` (the pictures). The reading of
D(x) and D(G(z)) is ``gankit.verdict.equilibrium``, and of failures ``gankit.diagnosis`` (imported
only when a report is built), the same as ``gankit doctor``'s. Nothing here imports ``gankit.train``.
"""

from __future__ import annotations

from gankit.report.html import build_report
from gankit.report.plots import plot_field

__all__ = ["build_report", "plot_field"]
