// gankit lab's launching: "New run" (a preset, a name, optional steps: POST /api/launch start) above
// the run list, and "Resume training" (gankit train --resume) on the page of a run that ended short
// of its steps and is not running. Both need the lab's token. Not in an export.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  if (window.LAB_STATIC) { $("newrun").remove(); $("btn-relaunch").remove(); return; }
  const TOKEN = new URLSearchParams(location.search).get("token") || "";
  const launcher = { presets: [], run: null };
  window.launcher = launcher;  // for the browser tests

  async function post(body) {
    const r = await fetch("/api/launch", {
      method: "POST", headers: { "Content-Type": "application/json", "X-Gankit-Token": TOKEN }, body: JSON.stringify(body) });
    const j = await r.json().catch(() => ({}));
    return { ok: r.ok, status: r.status, body: j };
  }

  function describe() {
    const p = launcher.presets.find((x) => x.name === $("nr-preset").value);
    $("nr-about").textContent = p ? p.description + (p.source === "runs" ? " (your presets/)" : "") : "";
  }

  async function loadPresets() {
    try {
      const r = await fetch("/api/presets", { cache: "no-store" });
      launcher.presets = (await r.json()).presets || [];
    } catch (e) { $("nr-msg").textContent = "the presets could not be read"; return; }
    const sel = $("nr-preset");
    sel.replaceChildren(...launcher.presets.map((p) => {
      const o = document.createElement("option");
      o.value = p.name; o.textContent = p.name;
      return o;
    }));
    describe();
  }

  $("nr-preset").addEventListener("change", describe);
  $("newrun-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { action: "start", preset: $("nr-preset").value, name: $("nr-name").value.trim() };
    if ($("nr-steps").value) body.steps = Number($("nr-steps").value);
    $("nr-msg").textContent = "starting…";
    const r = await post(body);
    if (!r.ok) { $("nr-msg").textContent = `refused: ${r.body.error || r.status}`; return; }
    $("nr-msg").textContent = `started ${r.body.run} (pid ${r.body.pid}); its output: ${r.body.run}/lab-launch.log`;
    location.hash = `#run=${encodeURIComponent(r.body.run)}`;
  });

  // a run not running, short of its steps (stopped, failed, ended early): it can be resumed
  function summary(s) {
    launcher.run = s.run;
    const short = s.steps === null || s.steps === undefined || s.step < s.steps;
    $("btn-relaunch").hidden = !(s.status !== "running" && s.status !== "new" && s.status !== "finished" && short);
  }
  document.addEventListener("lab:summary", (ev) => summary(ev.detail));
  if (window.lab && window.lab.summary) summary(window.lab.summary);  // one lab.js had before this script ran
  $("btn-relaunch").addEventListener("click", async () => {
    $("ctl-msg").textContent = "resuming…";
    const r = await post({ action: "resume", run: launcher.run });
    $("ctl-msg").textContent = r.ok ? `gankit train --resume started (pid ${r.body.pid}); its output: lab-launch.log`
      : `refused: ${r.body.error || r.status}`;
    if (r.ok) $("btn-relaunch").hidden = true;
  });
  loadPresets();
})();
