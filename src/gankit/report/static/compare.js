// gankit lab's comparison: several runs' curves of one series on one uPlot chart. The run list's
// "compare" boxes pick the runs, the menu picks the series (D(x), D(G(z)), a loss, a gradient
// norm, an evaluation score); one colour per run, the legend names the runs. Not in an export.
"use strict";
(function () {
  if (window.LAB_STATIC) { document.getElementById("compare").remove(); return; }
  const $ = (id) => document.getElementById(id);
  const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
  const NAMES = { d_real: "D(x)", d_fake: "D(G(z))", loss_d: "loss D", loss_g: "loss G" };
  const EVAL = "eval: ";
  const cmp = { picked: new Set(), u: null, metrics: new Map(), gen: 0 };
  window.compare = cmp;  // for the browser tests

  function decorate() {  // a "compare" box before each run card (the list is rebuilt every 3 s)
    for (const a of document.querySelectorAll("#runs .runcard")) {
      const prev = a.previousElementSibling;
      if (prev && prev.classList.contains("pick")) continue;
      const run = a.dataset.run;
      const box = document.createElement("input");
      box.type = "checkbox"; box.checked = cmp.picked.has(run); box.dataset.run = run;
      box.addEventListener("change", () => {
        if (box.checked) cmp.picked.add(run); else cmp.picked.delete(run);
        draw();
      });
      const label = document.createElement("label");
      label.className = "pick";
      label.append(box, " compare");
      a.before(label);
    }
  }

  const value = (m, key) => (key.startsWith(EVAL) ? m.eval[key.slice(EVAL.length)] : m.train[key]);

  function fillMenu() {  // the series any picked run has; the choice is kept when it still exists
    const menu = $("cmp-key");
    const keys = new Set();
    for (const m of cmp.metrics.values()) {
      Object.keys(m.train).forEach((k) => keys.add(k));
      Object.keys(m.eval).forEach((k) => keys.add(EVAL + k));
    }
    const was = menu.value || "d_real";
    const order = [...keys].sort((a, b) => (a in NAMES ? 0 : 1) - (b in NAMES ? 0 : 1) || a.localeCompare(b));
    menu.replaceChildren(...order.map((k) => new Option(NAMES[k] || k, k)));
    if (keys.has(was)) menu.value = was;
  }

  async function draw() {
    const gen = ++cmp.gen;  // a later draw (another box ticked meanwhile) wins
    const runs = [...cmp.picked].sort();
    $("compare").hidden = !runs.length;
    for (const r of runs) {
      if (!cmp.metrics.has(r)) {
        const res = await fetch(`/api/metrics?${new URLSearchParams({ run: r })}`, { cache: "no-store" });
        if (res.ok) cmp.metrics.set(r, await res.json());
      }
    }
    if (gen !== cmp.gen) return;
    for (const r of cmp.metrics.keys()) if (!cmp.picked.has(r)) cmp.metrics.delete(r);
    fillMenu();
    if (cmp.u) { cmp.u.destroy(); cmp.u = null; }
    const key = $("cmp-key").value;
    const shown = runs.filter((r) => cmp.metrics.has(r) && value(cmp.metrics.get(r), key));
    $("cmp-msg").textContent = shown.length < runs.length ? `${runs.length - shown.length} picked run(s) have no ${key}` : "";
    if (!shown.length) return;
    const cols = shown.map((r) => value(cmp.metrics.get(r), key));
    const xs = [...new Set(cols.flatMap((c) => c[0]))].sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const data = [xs, ...cols.map((c) => {
      const col = new Array(xs.length).fill(null);
      c[0].forEach((x, i) => { col[at.get(x)] = c[1][i]; });
      return col;
    })];
    const box = $("cmp-chart");
    cmp.u = new uPlot({
      width: Math.max(300, box.clientWidth - 10), height: 260,
      scales: { x: { time: false } },
      axes: [{ label: "step" }, { label: NAMES[key] || key, size: 50 }],
      series: [{ label: "step" }, ...shown.map((r, i) => ({ label: r, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
      cursor: { drag: { x: true, y: false } },
    }, data, box);
  }

  $("cmp-key").addEventListener("change", draw);
  $("cmp-reload").addEventListener("click", () => { cmp.metrics.clear(); draw(); });
  new MutationObserver(decorate).observe($("runs"), { childList: true });
  decorate();
})();
