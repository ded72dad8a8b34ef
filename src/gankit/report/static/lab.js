// gankit lab: the run list, and one run's curves, samples and timeline, kept live by server-sent
// events (the page is never reloaded). The 2-D view follows GAN Lab (Kahng et al. 2018): D's
// probability field as a heatmap with its 0.5 contour, real and generated points, and the
// direction G's update moves each generated point.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("token") || "";
// a static export (gankit.report.page): the data are in the page, there is no server to ask or steer
const STATIC = window.LAB_STATIC || null;
const $ = (id) => document.getElementById(id);
const COLORS = { loss_d: "#d62728", loss_g: "#1f77b4", d_real: "#1f77b4", d_fake: "#d62728",
                 grad_d: "#d62728", grad_g: "#1f77b4", ada_p: "#2ca02c" };
const PALETTE = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e"];
const CHARTS = {
  "c-loss": { keys: (k) => k.startsWith("loss"), label: "loss" },
  "c-d": { keys: (k) => k === "d_real" || k === "d_fake" || k === "ada_p", label: "D", range: [0, 1], half: true },
  "c-grad": { keys: (k) => k.startsWith("grad"), label: "norm" },
  "c-eval": { keys: (k) => k === "diversity" || k === "modes" || k === "hq", label: "score", evals: true },
};
const NAMES = { d_real: "D(x)", d_fake: "D(G(z))", loss_d: "loss D", loss_g: "loss G",
                grad_d: "‖∇D‖", grad_g: "‖∇G‖", ada_p: "ADA's p" };

const state = { run: null, source: null, charts: {}, events: [], samples: [], summary: null,
                twoD: false, follow: true, fieldCache: new Map(), playing: null, full: true };
window.lab = state;  // for the browser tests and the curious

// ------------------------------------------------------------------------------- helpers

function staticApi(path, params) {
  const S = STATIC;
  if (path === "/api/runs") return { root: S.summary.name, runs: [S.summary] };
  if (path === "/api/run") return S.summary;
  if (path === "/api/metrics") return S.metrics;
  if (path === "/api/sample" && S.fields[params.step]) return S.fields[params.step];
  throw new Error(`${path}: not in this export`);
}

function api(path, params = {}) {
  if (STATIC) return new Promise((ok) => ok(staticApi(path, params)));
  const q = new URLSearchParams(params);
  return fetch(`${path}?${q}`, { cache: "no-store" }).then((r) => {
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  });
}
const fmt = (v, d = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(d));
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
}
const sampleUrl = (run, step, kind = "png") => (STATIC ? STATIC.images[step] || "" : `/api/sample?${new URLSearchParams({ run, step, kind })}`);

// ------------------------------------------------------------------------------- run list

async function refreshRuns() {
  let data;
  try { data = await api("/api/runs"); } catch (e) { return; }
  $("root").textContent = data.root;
  const box = $("runs");
  box.replaceChildren();
  if (!data.runs.length) box.append(el("p", { class: "muted", text: "No runs here yet (a run folder holds config.yaml and metrics.jsonl)." }));
  for (const r of data.runs) {
    const status = r.paused && r.status === "running" ? "paused" : r.status;
    const a = el("a", { class: "runcard" + (r.run === state.run ? " current" : ""), href: `#run=${encodeURIComponent(r.run)}`, "data-run": r.run });
    const img = el("img", { alt: "" });
    const thumb = r.latest_sample !== null ? sampleUrl(r.run, r.latest_sample) : "";
    if (thumb) img.src = thumb; else img.style.visibility = "hidden";
    const meta = el("div", { class: "meta" },
      el("div", { class: "name", text: r.run === "." ? r.name : r.run, title: r.run }),
      el("span", { class: `badge ${status}`, text: status }),
      el("div", { text: `step ${r.step}${r.steps ? " / " + r.steps : ""}` }),
      el("div", { text: `D(x) ${fmt(r.d_real, 2)} · D(G(z)) ${fmt(r.d_fake, 2)}` }));
    if (r.warning) meta.append(el("div", { class: "warning", text: "⚠ " + (r.warning.kind || r.warning.event).replace(/_/g, " ") }));
    a.append(img, meta);
    box.append(a);
  }
}

// ------------------------------------------------------------------------------- curves (uPlot)

function eventLines(u) {  // events on the curves: vertical lines at their steps
  const { ctx } = u;
  const { left, top, width, height } = u.bbox;
  ctx.save();
  for (const e of state.events) {
    const x = u.valToPos(e.step, "x", true);
    if (x < left || x > left + width) continue;
    ctx.strokeStyle = e.event === "control" ? "rgba(59,91,219,.55)" : "rgba(184,92,0,.7)";
    ctx.setLineDash([3, 3]);
    ctx.lineWidth = devicePixelRatio;
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
  }
  ctx.restore();
}

function halfLine(u) {  // D = 0.5: where D cannot tell real from fake (the equilibrium)
  const { ctx } = u;
  const y = u.valToPos(0.5, "y", true);
  ctx.save();
  ctx.strokeStyle = "#444"; ctx.setLineDash([6, 4]); ctx.lineWidth = devicePixelRatio;
  ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
  ctx.restore();
}

function align(series, keys) {  // {key: [xs, ys]} -> uPlot's [xs, ys1, ys2, ...] on the union of xs
  const xs = [...new Set(keys.flatMap((k) => series[k][0]))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const cols = keys.map((k) => {
    const col = new Array(xs.length).fill(null);
    series[k][0].forEach((x, i) => { col[at.get(x)] = series[k][1][i]; });
    return col;
  });
  return [xs, ...cols];
}

function buildChart(id, series, keys) {
  const spec = CHARTS[id];
  const box = $(id);
  if (state.charts[id]) { state.charts[id].u.destroy(); delete state.charts[id]; }
  box.querySelector(".empty")?.remove();
  if (!keys.length) {
    box.append(el("div", { class: "empty", text: spec.evals ? "no evaluations yet (--eval-every, --diagnose-every)" : "no values yet" }));
    return;
  }
  const width = Math.max(260, box.clientWidth - 10);
  // evaluation scores (FID ~ 100, modes ~ 8) get their own axis on the right, beside the probe's 0-1;
  // a score that is a share (an accuracy: every value in [0, 1]) stays on the left with the 0-1 ones,
  // or FID's range would flatten it to a line at the bottom
  const share = (k) => series[k][1].every((v) => v === null || (v >= 0 && v <= 1));
  const own = (k) => k.startsWith(EVAL) && !share(k);
  const twoAxes = keys.some(own) && keys.some((k) => !own(k));
  const opts = {
    width, height: 220,
    scales: { x: { time: false }, y: spec.range ? { range: spec.range } : {}, e: {} },
    axes: [{ label: "step" }, { label: spec.label, size: 50, scale: "y" },
           ...(twoAxes ? [{ side: 1, scale: "e", label: "evaluation", size: 50, grid: { show: false } }] : [])],
    series: [{ label: "step" }, ...keys.map((k, i) => ({ label: NAMES[k] || k, scale: own(k) && twoAxes ? "e" : "y", stroke: COLORS[k] || PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true, points: { show: !own(k) ? false : undefined } }))],
    legend: { live: true },
    hooks: { draw: [eventLines, ...(spec.half ? [halfLine] : [])], setSelect: [(u) => zoomed(id, u)] },
    cursor: { drag: { x: true, y: false } },
  };
  const u = new uPlot(opts, align(series, keys), box);
  state.charts[id] = { u, keys, data: u.data.map((a) => a.slice()) };
}

const EVAL = "eval: ";  // evaluation scores' keys on the page (the probe has a "modes" too)

function keysFor(id, m) {
  const spec = CHARTS[id];
  const train = Object.keys(m.train).filter(spec.keys);
  const evals = spec.evals ? Object.keys(m.eval) : [];
  return { keys: [...train, ...evals.map((k) => EVAL + k)],
           series: { ...Object.fromEntries(train.map((k) => [k, m.train[k]])), ...Object.fromEntries(evals.map((k) => [EVAL + k, m.eval[k]])) } };
}

function buildCharts(m) {
  for (const id of Object.keys(CHARTS)) {
    const { keys, series } = keysFor(id, m);
    buildChart(id, series, keys);
  }
}

async function zoomed(id, u) {  // a downsampled run: the zoomed range at full resolution
  if (state.full || u.select.width < 2) return;
  const lo = u.posToVal(u.select.left, "x"), hi = u.posToVal(u.select.left + u.select.width, "x");
  const m = await api("/api/metrics", { run: state.run, lo, hi });
  const { keys, series } = keysFor(id, m);
  if (keys.join() === state.charts[id].keys.join()) u.setData(align(series, keys), false);
  u.setScale("x", { min: lo, max: hi });
  if (!state.charts[id].partial) {  // double-click: back to the whole run, downsampled
    state.charts[id].partial = true;
    u.over.addEventListener("dblclick", () => loadMetrics());
  }
}

function appendRecords(recs) {  // live: new metrics lines onto the curves, without rebuilding
  let rebuild = false;
  for (const rec of recs) {
    if ("event" in rec) { state.events.push(rec); addEvent(rec); continue; }
    const isEval = ["eval_seconds", "eval_n", "n_per_class"].some((k) => k in rec);
    for (const [id, chart] of Object.entries(state.charts)) {
      const value = (k) => (k.startsWith(EVAL) ? (isEval ? rec[k.slice(EVAL.length)] : null) : (isEval ? null : rec[k]));
      const vals = chart.keys.map((k) => (typeof value(k) === "number" ? value(k) : null));
      if (isEval && id === "c-eval" && Object.keys(rec).some((k) => typeof rec[k] === "number" && !["step", "eval_seconds", "eval_n", "n_per_class"].includes(k) && !chart.keys.includes(EVAL + k))) rebuild = true;
      if (vals.every((v) => v === null)) continue;
      if (!isEval && Object.keys(rec).some((k) => CHARTS[id].keys(k) && !chart.keys.includes(k))) rebuild = true;
      chart.data[0].push(rec.step);
      vals.forEach((v, i) => chart.data[i + 1].push(v));
    }
    if (!isFinite(rec.step)) continue;
    const missing = Object.keys(CHARTS).filter((id) => !state.charts[id] && (Object.keys(rec).some(CHARTS[id].keys) || (isEval && CHARTS[id].evals)));
    if (missing.length) rebuild = true;
  }
  if (rebuild) return loadMetrics();
  for (const chart of Object.values(state.charts)) chart.u.setData(chart.data.map((a) => a.slice()));
}

// ------------------------------------------------------------------------------- timeline

function addEvent(e) {
  const li = el("li", { class: e.event },
    el("span", { class: "k", text: e.event === "warning" ? (e.kind || "warning").replace(/_/g, " ") : e.event === "control" ? e.action : e.event }),
    ` step ${e.step}: ${e.message || ""}`);
  $("timeline").prepend(li);
}

// ------------------------------------------------------------------------------- samples

function setSamples(steps) {
  state.samples = steps;
  const s = $("slider");
  s.max = Math.max(0, steps.length - 1);
  if (state.follow) s.value = s.max;
  showSample();
}

async function showSample() {
  const i = Number($("slider").value);
  const step = state.samples[i];
  $("slider-step").textContent = step === undefined ? "no samples yet" : `step ${step} (${i + 1} of ${state.samples.length})`;
  if (step === undefined) return;
  if (state.twoD) {
    let snap = state.fieldCache.get(step);
    if (!snap) {
      try { snap = await api("/api/sample", { run: state.run, step, kind: "json" }); } catch (e) { return; }
      state.fieldCache.set(step, snap);
    }
    if (state.samples[Number($("slider").value)] === step) drawField($("field"), snap);
  } else {
    $("grid").src = sampleUrl(state.run, step);
    $("grid").dataset.step = step;
  }
}

const PLAY_MS = 100;  // one sample step a frame: 10 frames a second (issue 19: the 2-D animation at >= 10 fps)
function play() {  // animate the 2-D game (or the grids) over the run's steps
  if (state.playing) { clearInterval(state.playing); state.playing = null; $("btn-play").textContent = "▶"; return; }
  $("btn-play").textContent = "⏸";
  state.follow = false;
  if (Number($("slider").value) >= state.samples.length - 1) $("slider").value = 0;
  state.playing = setInterval(() => {
    const s = $("slider"), i = Number(s.value);
    if (i >= state.samples.length - 1) { state.follow = true; return play(); }
    s.value = i + 1; showSample();
  }, PLAY_MS);
}

// ------------------------------------------------------------------------------- header and steering

function setSummary(r) {
  state.summary = r;
  const status = r.paused && r.status === "running" ? "paused" : r.status;
  $("run-status").textContent = status;
  $("run-status").className = `badge ${status}`;
  $("n-step").textContent = r.step;
  $("n-steps").textContent = r.steps ? ` / ${r.steps}` : "";
  $("n-dreal").textContent = fmt(r.d_real);
  $("n-dfake").textContent = fmt(r.d_fake);
  const w = $("n-warning");
  w.hidden = !r.warning;
  if (r.warning) w.textContent = `⚠ step ${r.warning.step}: ${(r.warning.kind || r.warning.event).replace(/_/g, " ")}`;
  const live = r.status === "running";
  for (const b of ["btn-pause", "btn-resume", "btn-step", "btn-step-d", "btn-step-g", "btn-stop", "btn-set"]) $(b).disabled = !live;
  $("btn-pause").hidden = r.paused; $("btn-resume").hidden = !r.paused;
  for (const b of ["btn-step", "btn-step-d", "btn-step-g"]) $(b).hidden = !r.paused;
  document.dispatchEvent(new CustomEvent("lab:summary", { detail: r }));  // launch.js: Resume training
}

async function steer(body) {
  $("ctl-msg").textContent = "sending…";
  const r = await fetch(`/api/control?${new URLSearchParams({ run: state.run })}`, {
    method: "POST", headers: { "Content-Type": "application/json", "X-Gankit-Token": TOKEN }, body: JSON.stringify(body) });
  const j = await r.json().catch(() => ({}));
  $("ctl-msg").textContent = r.ok ? `request ${j.id} written to control.jsonl; the run applies it at its next step` : `refused: ${j.error || r.status}`;
}

// ------------------------------------------------------------------------------- one run

async function loadMetrics() {
  const m = await api("/api/metrics", { run: state.run });
  state.events = m.events;
  state.full = m.full;
  $("timeline").replaceChildren();
  m.events.forEach(addEvent);
  buildCharts(m);
  return m.offset;
}

async function openRun(run) {
  if (state.source) { state.source.close(); state.source = null; }
  if (state.playing) play();
  state.run = run; state.fieldCache.clear(); state.follow = true;
  document.dispatchEvent(new CustomEvent("lab:run", { detail: run }));  // the explorer (explore.js)
  $("pick").hidden = true; $("run").hidden = false;
  document.querySelectorAll(".runcard").forEach((a) => a.classList.toggle("current", a.dataset.run === run));
  let r;
  try { r = await api("/api/run", { run }); } catch (e) { $("run").hidden = true; $("pick").hidden = false; $("pick").textContent = `No run ${run} here.`; return; }
  $("run-name").textContent = run === "." ? r.name : run;
  state.twoD = r.two_d;
  $("grid").hidden = r.two_d; $("field").hidden = !r.two_d; $("legend").hidden = !r.two_d;
  setSummary(r);
  const offset = await loadMetrics();
  setSamples(r.samples);
  if (STATIC) return;  // nothing grows in an export
  const src = new EventSource(`/api/stream?${new URLSearchParams({ run, offset })}`);
  state.source = src;
  src.onopen = () => { $("conn").textContent = "live"; $("conn").classList.add("live"); };
  src.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").classList.remove("live"); };
  src.addEventListener("records", (ev) => appendRecords(JSON.parse(ev.data).records));
  src.addEventListener("samples", (ev) => {
    const d = JSON.parse(ev.data);
    if (!state.twoD && d.samples.length) { /* first grid of a new run decides the view */ }
    setSamples(d.samples);
  });
  src.addEventListener("status", (ev) => setSummary(JSON.parse(ev.data)));
  src.addEventListener("reset", () => openRun(run));  // a resumed run rewrote metrics.jsonl
}

function route() {
  const m = location.hash.match(/^#run=(.*)$/);
  if (m) openRun(decodeURIComponent(m[1]));
}

$("slider").addEventListener("input", () => {
  state.follow = Number($("slider").value) === state.samples.length - 1;
  showSample();
});
$("btn-play").addEventListener("click", play);
$("btn-pause").addEventListener("click", () => steer({ action: "pause" }));
$("btn-resume").addEventListener("click", () => steer({ action: "resume" }));
$("btn-step").addEventListener("click", () => steer({ action: "step" }));
$("btn-step-d").addEventListener("click", () => steer({ action: "step_d" }));
$("btn-step-g").addEventListener("click", () => steer({ action: "step_g" }));
$("btn-stop").addEventListener("click", () => { if (confirm("Stop this run? A checkpoint is saved; gankit train --resume continues it.")) steer({ action: "stop" }); });
$("controls").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const body = { action: "set" };
  if ($("lr-g").value) body.lr_g = Number($("lr-g").value);
  if ($("lr-d").value) body.lr_d = Number($("lr-d").value);
  if ($("d-steps").value) body.d_steps = Number($("d-steps").value);
  if ($("loss").value) body.loss = $("loss").value;
  if (Object.keys(body).length === 1) { $("ctl-msg").textContent = "give lr_g, lr_d, k or a loss"; return; }
  steer(body);
});
window.addEventListener("hashchange", route);
let resized = null;  // the curves are redrawn at the new width once the window stops changing
window.addEventListener("resize", () => { clearTimeout(resized); resized = setTimeout(() => state.run && loadMetrics(), 300); });
refreshRuns().then(() => {
  if (!location.hash) {
    const first = document.querySelector(".runcard");
    if (first) location.hash = first.getAttribute("href");
  } else route();
});
if (STATIC) {
  $("controls").hidden = true;
  $("conn").textContent = "static export: the run as it was when exported";
} else setInterval(refreshRuns, 3000);
