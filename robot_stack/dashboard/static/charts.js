// Minimal canvas line charts (no libraries): lines, confidence bands, horizontal/vertical markers.
"use strict";

const Charts = (() => {
  const PAD = { l: 38, r: 8, t: 8, b: 18 };

  function fmt(v) {
    if (!isFinite(v)) return "";
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1000) return (v / 1000).toFixed(1) + "k";
    if (a >= 10) return v.toFixed(0);
    if (a >= 1) return v.toFixed(1);
    return v.toFixed(2);
  }

  // opts: {series: [{name, color, pts: [[x, y]], band: [[x, lo, hi]], dots}], ymin, ymax,
  //        xmin, xmax, hlines: [{y, color, label}], vline: x, shade: [[x0, x1, color]], xfmt, empty}
  function line(canvas, opts) {
    const ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height;
    ctx.clearRect(0, 0, W, H);
    ctx.fillStyle = "#12161c";
    ctx.fillRect(0, 0, W, H);
    const series = (opts.series || []).filter(s => (s.pts && s.pts.length) || (s.band && s.band.length));
    const xs = [], ys = [];
    for (const s of series) {
      for (const p of s.pts || []) { if (p[1] !== null && isFinite(p[1])) { xs.push(p[0]); ys.push(p[1]); } }
      for (const b of s.band || []) { xs.push(b[0]); ys.push(b[1], b[2]); }
    }
    for (const h of opts.hlines || []) ys.push(h.y);
    if (!xs.length) {
      ctx.fillStyle = "#7d8590"; ctx.font = "12px sans-serif";
      ctx.fillText(opts.empty || "no data yet", PAD.l + 6, H / 2);
      return null;
    }
    let xmin = opts.xmin ?? Math.min(...xs), xmax = opts.xmax ?? Math.max(...xs);
    let ymin = opts.ymin ?? Math.min(...ys), ymax = opts.ymax ?? Math.max(...ys);
    if (xmax <= xmin) xmax = xmin + 1;
    if (ymax <= ymin) { ymax = ymin + 1; ymin = ymin - 1e-9; }
    const px = x => PAD.l + (x - xmin) / (xmax - xmin) * (W - PAD.l - PAD.r);
    const py = y => H - PAD.b - (y - ymin) / (ymax - ymin) * (H - PAD.t - PAD.b);
    // grid + labels
    ctx.strokeStyle = "#2a313c"; ctx.fillStyle = "#7d8590"; ctx.font = "10px sans-serif"; ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = ymin + (ymax - ymin) * i / 4;
      ctx.beginPath(); ctx.moveTo(PAD.l, py(y)); ctx.lineTo(W - PAD.r, py(y)); ctx.stroke();
      ctx.fillText(fmt(y), 2, py(y) + 3);
    }
    const xf = opts.xfmt || fmt;
    ctx.fillText(xf(xmin), PAD.l, H - 4);
    const right = xf(xmax); ctx.fillText(right, W - PAD.r - ctx.measureText(right).width, H - 4);
    for (const sh of opts.shade || []) {
      ctx.fillStyle = sh[2] || "rgba(255,170,0,0.18)";
      ctx.fillRect(px(sh[0]), PAD.t, Math.max(1, px(sh[1]) - px(sh[0])), H - PAD.t - PAD.b);
    }
    for (const s of series) {
      if (s.band && s.band.length) {
        ctx.fillStyle = s.bandColor || (s.color + "33");
        ctx.beginPath();
        s.band.forEach((b, i) => (i ? ctx.lineTo(px(b[0]), py(b[2])) : ctx.moveTo(px(b[0]), py(b[2]))));
        for (let i = s.band.length - 1; i >= 0; i--) ctx.lineTo(px(s.band[i][0]), py(s.band[i][1]));
        ctx.closePath(); ctx.fill();
      }
      ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 1.6; ctx.beginPath();
      let started = false;
      for (const p of s.pts || []) {
        if (p[1] === null || !isFinite(p[1])) { started = false; continue; }
        if (!started) { ctx.moveTo(px(p[0]), py(p[1])); started = true; } else ctx.lineTo(px(p[0]), py(p[1]));
      }
      ctx.stroke();
      if (s.dots) {
        ctx.fillStyle = s.color;
        for (const p of s.pts || []) if (p[1] !== null) { ctx.beginPath(); ctx.arc(px(p[0]), py(p[1]), 2.5, 0, 7); ctx.fill(); }
      }
    }
    for (const h of opts.hlines || []) {
      ctx.strokeStyle = h.color || "#e5534b"; ctx.setLineDash([5, 4]); ctx.beginPath();
      ctx.moveTo(PAD.l, py(h.y)); ctx.lineTo(W - PAD.r, py(h.y)); ctx.stroke(); ctx.setLineDash([]);
      if (h.label) { ctx.fillStyle = h.color || "#e5534b"; ctx.fillText(h.label, W - PAD.r - ctx.measureText(h.label).width, py(h.y) - 3); }
    }
    if (opts.vline !== undefined && opts.vline !== null) {
      ctx.strokeStyle = "#e6edf3"; ctx.beginPath(); ctx.moveTo(px(opts.vline), PAD.t); ctx.lineTo(px(opts.vline), H - PAD.b); ctx.stroke();
    }
    // legend
    let lx = PAD.l + 4;
    ctx.font = "10px sans-serif";
    for (const s of series) {
      if (!s.name) continue;
      ctx.fillStyle = s.color; ctx.fillText(s.name, lx, PAD.t + 10); lx += ctx.measureText(s.name).width + 10;
    }
    return { px, py, xmin, xmax };
  }

  return { line, fmt };
})();
