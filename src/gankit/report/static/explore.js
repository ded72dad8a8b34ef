// gankit lab's latent explorer (gankit.lab.explore): draw from the open run's newest checkpoint.
// A GAN: a grid for a seed (and a class, for a conditional run), a strip between two seeds; a text
// -> image run: the images of a caption; a translator: an uploaded image and its translation.
// The panel asks the server only when it is opened; a static export has no explorer.
"use strict";
(function () {
  if (window.LAB_STATIC) { document.getElementById("explore").remove(); return; }
  const $ = (id) => document.getElementById(id);
  const TOKEN = new URLSearchParams(location.search).get("token") || "";
  const ex = { run: null, info: null };
  window.explore = ex;  // for the browser tests
  const url = (path, params = {}) => `${path}?${new URLSearchParams({ run: ex.run, ...params })}`;
  const msg = (t) => { $("x-msg").textContent = t; };

  async function refused(r) {
    const j = await r.json().catch(() => ({}));
    msg(`refused: ${j.error || r.status}`);
  }

  async function show(r) {  // a PNG answer into the panel's image
    if (!r.ok) { await refused(r); return; }
    const img = $("x-img");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(await r.blob());
    img.hidden = false;
    msg(`from the checkpoint at step ${ex.info.step}`);
  }

  const get = (path, params) => { msg("drawing…"); return fetch(url(path, params), { cache: "no-store" }).then(show); };

  async function load() {  // what the run's checkpoint offers: which controls to show
    for (const id of ["x-gan", "x-class-box", "x-text", "x-translate"]) $(id).hidden = true;
    $("x-img").hidden = true;
    ex.info = null;
    if (!$("explore").open || !ex.run) return;
    msg("loading the newest checkpoint…");
    const run = ex.run;
    const r = await fetch(url("/api/explore"), { cache: "no-store" });
    if (run !== ex.run) return;
    if (!r.ok) { await refused(r); return; }
    const info = await r.json();
    ex.info = info;
    msg(`the checkpoint at step ${info.step}`);
    if (info.kind === "gan" && info.points) { msg("a 2-D run: its samples are the points in the field above"); return; }
    if (info.kind === "gan") {
      $("x-gan").hidden = false;
      $("x-class-box").hidden = !info.num_classes;
      $("x-class").replaceChildren(...info.classes.map((name, k) => new Option(name, k)));
    }
    $("x-text").hidden = info.kind !== "text";
    if (info.kind === "translator") {
      $("x-translate").hidden = false;
      $("x-dir").replaceChildren(...info.directions.map((d) => new Option(d, d)));
    }
  }

  const cls = () => (ex.info && ex.info.num_classes ? { class: $("x-class").value } : {});
  $("x-sample").addEventListener("click", () => get("/api/explore/sample", { seed: $("x-seed").value, n: $("x-n").value, ...cls() }));
  $("x-interp").addEventListener("click", () => get("/api/explore/interpolate", { seed_a: $("x-seed-a").value, seed_b: $("x-seed-b").value, n: $("x-steps").value, ...cls() }));
  $("x-caption-go").addEventListener("click", () => get("/api/explore/caption", { text: $("x-caption").value, n: $("x-n-text").value, seed: $("x-seed-text").value }));
  $("x-go").addEventListener("click", async () => {
    const file = $("x-file").files[0];
    if (!file) { msg("choose an image first"); return; }
    msg("translating…");
    const r = await fetch(url("/api/explore/translate", { direction: $("x-dir").value }),
      { method: "POST", headers: { "X-Gankit-Token": TOKEN }, body: file });
    await show(r);
  });
  $("explore").addEventListener("toggle", load);
  document.addEventListener("lab:run", (ev) => { ex.run = ev.detail; load(); });
  // lab.js may have opened a run already: its run list's fetch can finish while the parser is still
  // waiting for this script, and that lab:run went to no listener
  if (window.lab && window.lab.run !== null) { ex.run = window.lab.run; load(); }
})();
