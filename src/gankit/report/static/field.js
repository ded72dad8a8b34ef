// gankit lab's 2-D view, after GAN Lab (Kahng et al. 2018): D's probability field as a heatmap with
// its 0.5 contour, the real points, G's points and the direction G's update moves each of them,
// drawn from a run's samples/step-N.json (gankit.sampling.field_snapshot).
"use strict";

function fieldColor(p) {  // red (D says fake) - white (0.5) - blue (D says real), as the report's PNG
  const t = Math.max(0, Math.min(1, p));
  const [a, b] = t < 0.5 ? [[214, 39, 40], [255, 255, 255]] : [[255, 255, 255], [31, 119, 180]];
  const s = t < 0.5 ? t / 0.5 : (t - 0.5) / 0.5;
  return a.map((c, i) => Math.round(c + (b[i] - c) * s));
}

function drawField(canvas, snap) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, R = snap.resolution;
  const [xmin, xmax, ymin, ymax] = snap.extent;
  const px = (x) => ((x - xmin) / (xmax - xmin)) * W;
  const py = (y) => H - ((y - ymin) / (ymax - ymin)) * H;
  const img = new ImageData(R, R);  // row 0 of the field is ymin: drawn at the bottom
  for (let r = 0; r < R; r++) for (let c = 0; c < R; c++) {
    const [cr, cg, cb] = fieldColor(snap.field[r][c]);
    const o = ((R - 1 - r) * R + c) * 4;
    img.data[o] = cr; img.data[o + 1] = cg; img.data[o + 2] = cb; img.data[o + 3] = 255;
  }
  const off = document.createElement("canvas");
  off.width = off.height = R;
  off.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.clearRect(0, 0, W, H);
  ctx.drawImage(off, 0, 0, W, H);
  // D = 0.5 by marching squares over the grid (linear interpolation along each cell edge)
  const gx = (c) => px(xmin + (c / (R - 1)) * (xmax - xmin));
  const gy = (r) => py(ymin + (r / (R - 1)) * (ymax - ymin));
  ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5; ctx.beginPath();
  for (let r = 0; r < R - 1; r++) for (let c = 0; c < R - 1; c++) {
    const v = [snap.field[r][c], snap.field[r][c + 1], snap.field[r + 1][c + 1], snap.field[r + 1][c]];
    const corners = [[c, r], [c + 1, r], [c + 1, r + 1], [c, r + 1]];
    const cuts = [];
    for (let k = 0; k < 4; k++) {
      const a = v[k] - 0.5, b = v[(k + 1) % 4] - 0.5;
      if ((a < 0) !== (b < 0)) {
        const t = a / (a - b), [c0, r0] = corners[k], [c1, r1] = corners[(k + 1) % 4];
        cuts.push([gx(c0 + t * (c1 - c0)), gy(r0 + t * (r1 - r0))]);
      }
    }
    for (let k = 0; k + 1 < cuts.length; k += 2) { ctx.moveTo(...cuts[k]); ctx.lineTo(...cuts[k + 1]); }
  }
  ctx.stroke();
  ctx.fillStyle = "#2ca02c"; ctx.strokeStyle = "#fff"; ctx.lineWidth = 0.8;
  for (const [x, y] of snap.real) { ctx.beginPath(); ctx.arc(px(x), py(y), 3, 0, 2 * Math.PI); ctx.fill(); ctx.stroke(); }
  // G's arrows: the gradient of log D at each generated point, scaled so the longest is 6 % of the view
  const norms = snap.arrows.map(([u, v]) => Math.hypot(u, v));
  const longest = Math.max(1e-12, ...norms);
  const scale = (0.06 * (xmax - xmin)) / longest;
  ctx.strokeStyle = "rgba(60,60,60,.75)"; ctx.lineWidth = 1;
  const every = Math.max(1, Math.ceil(snap.arrows.length / 160));  // a readable number of arrows
  snap.arrows.forEach(([u, v], i) => {
    if (i % every) return;
    const [x, y] = snap.fake[i];
    const x0 = px(x), y0 = py(y), x1 = px(x + u * scale), y1 = py(y + v * scale);
    const ang = Math.atan2(y1 - y0, x1 - x0);
    ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1);
    if (Math.hypot(x1 - x0, y1 - y0) > 4) {
      ctx.lineTo(x1 - 4 * Math.cos(ang - 0.5), y1 - 4 * Math.sin(ang - 0.5));
      ctx.moveTo(x1, y1); ctx.lineTo(x1 - 4 * Math.cos(ang + 0.5), y1 - 4 * Math.sin(ang + 0.5));
    }
    ctx.stroke();
  });
  ctx.fillStyle = "#222";
  for (const [x, y] of snap.fake) { ctx.beginPath(); ctx.arc(px(x), py(y), 2.2, 0, 2 * Math.PI); ctx.fill(); }
  // the step, and GAN Lab's grid estimates of KL(p_data || p_G) and JS (gankit.sampling.grid_divergences)
  const div = snap.js === undefined ? "" : `   KL ${snap.kl.toFixed(2)}   JS ${snap.js.toFixed(3)} (log 2 = 0.693)`;
  ctx.font = "13px system-ui";
  const label = `step ${snap.step}${div}`;
  ctx.fillStyle = "rgba(255,255,255,.8)"; ctx.fillRect(6, 6, ctx.measureText(label).width + 12, 22);
  ctx.fillStyle = "#000"; ctx.fillText(label, 12, 22);
  canvas.dataset.js = snap.js === undefined ? "" : snap.js;
  canvas.dataset.step = snap.step;
  canvas.dataset.points = snap.real.length + snap.fake.length;
}
