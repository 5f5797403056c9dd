// robot_stack dashboard page: live WebSocket view, learning charts, episode browser, session control.
"use strict";

const $ = id => document.getElementById(id);
const COLORS = ["#4aa3ff", "#f0883e", "#3fb950", "#d2a8ff", "#ffd33d", "#ff7b72", "#79c0ff", "#56d364"];

// Test/bench hooks: frames drawn (cam, seq, t = epoch ms when drawn), counters.
const dash = window.__dash = { frameLog: [], framesDrawn: 0, states: 0, lastState: null, ws: null };

// ----------------------------------------------------------------------------- token + API
let token = sessionStorage.getItem("robot_stack_token") || "";
(function tokenFromFragment() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    token = decodeURIComponent(m[1]);
    sessionStorage.setItem("robot_stack_token", token);
    history.replaceState(null, "", location.pathname + location.search);  // keep it out of the address bar
  }
})();

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

async function api(method, path, body) {
  const opts = { method, headers: authHeaders(body ? { "Content-Type": "application/json" } : {}) };
  if (body !== undefined) opts.body = JSON.stringify(body);
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) {
    let msg = data && data.detail ? data.detail : r.statusText;
    if (Array.isArray(msg)) msg = msg.map(d => (d.loc || []).join(".") + ": " + d.msg).join("; ");
    const err = new Error(`${r.status}: ${msg}`); err.status = r.status; throw err;
  }
  return data;
}

let toastTimer = null;
function toast(msg, bad) {
  const t = $("toast");
  t.textContent = msg; t.className = "toast" + (bad ? " bad" : "");
  clearTimeout(toastTimer); toastTimer = setTimeout(() => t.classList.add("hidden"), 4000);
}

async function checkToken() {
  const state = $("token-state");
  if (!token) { state.textContent = "no token: read only"; state.className = "warn"; return false; }
  try {
    const r = await api("GET", "/api/auth/check");
    state.textContent = r.valid ? "token ok" : "token rejected";
    state.className = r.valid ? "ok" : "warn";
    return r.valid;
  } catch (e) { state.textContent = "?"; return false; }
}

$("token-form").addEventListener("submit", ev => {
  ev.preventDefault();
  token = $("token-input").value.trim();
  $("token-input").value = "";
  sessionStorage.setItem("robot_stack_token", token);
  checkToken();
  if (!dash.ws || dash.ws.readyState > 1) connectLive();
});

async function command(path, body, what) {
  try {
    const r = await api("POST", path, body);
    toast(r.detail || what + " sent");
    return r;
  } catch (e) {
    toast(what + " failed: " + e.message + (e.status === 401 ? " (enter the operator token)" : ""), true);
    throw e;
  }
}

// ----------------------------------------------------------------------------- live stream
const camCanvases = {};
let successPts = [];  // [t, prob, threshold, task]
let healthInfo = null;

function cameraCanvas(cam) {
  if (camCanvases[cam]) return camCanvases[cam];
  $("no-cameras").classList.add("hidden");
  const fig = document.createElement("figure");
  fig.className = "cam";
  const c = document.createElement("canvas");
  c.id = "cam-" + cam; c.width = 320; c.height = 240; c.dataset.seq = "-1";
  const cap = document.createElement("figcaption");
  cap.id = "cap-" + cam; cap.textContent = cam;
  fig.append(c, cap); $("cameras").append(fig);
  return (camCanvases[cam] = { canvas: c, cap, times: [] });
}

async function onFrame(buf, ws) {
  const view = new DataView(buf);
  const hlen = view.getUint16(0);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 2, hlen)));
  const blob = new Blob([new Uint8Array(buf, 2 + hlen)], { type: "image/jpeg" });
  let bmp;
  try { bmp = await createImageBitmap(blob); } catch (e) { ws.send(JSON.stringify({ type: "ack", cam: header.cam, seq: header.seq })); return; }
  const slot = cameraCanvas(header.cam);
  const c = slot.canvas;
  if (c.width !== bmp.width || c.height !== bmp.height) { c.width = bmp.width; c.height = bmp.height; }
  c.getContext("2d").drawImage(bmp, 0, 0);
  bmp.close();
  const t = performance.timeOrigin + performance.now();
  c.dataset.seq = String(header.seq);
  dash.framesDrawn++;
  dash.frameLog.push({ cam: header.cam, seq: header.seq, t });
  if (dash.frameLog.length > 5000) dash.frameLog.splice(0, 1000);
  slot.times.push(t); while (slot.times.length && slot.times[0] < t - 2000) slot.times.shift();
  slot.cap.textContent = `${header.cam} · #${header.seq} · ${(slot.times.length / 2).toFixed(0)} fps`;
  if (ws.readyState === 1) ws.send(JSON.stringify({ type: "ack", cam: header.cam, seq: header.seq }));
}

function connectLive() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/live/ws");
  ws.binaryType = "arraybuffer";
  dash.ws = ws;
  ws.onopen = () => {
    if (healthInfo && healthInfo.auth_required_for_read) ws.send(JSON.stringify({ token }));
    setPill("pill-conn", "live", "ok");
  };
  ws.onmessage = ev => {
    if (typeof ev.data === "string") onState(JSON.parse(ev.data));
    else onFrame(ev.data, ws);
  };
  ws.onclose = ev => {
    setPill("pill-conn", ev.code === 1008 ? "token needed" : "offline", "bad");
    if (dash.ws === ws && ev.code !== 1008) setTimeout(connectLive, 1000);
  };
}

function setPill(id, text, cls) {
  const p = $(id);
  p.textContent = text;
  p.className = "pill" + (cls ? " " + cls : "");
}

function onState(s) {
  dash.states++; dash.lastState = s;
  const ss = s.session || {};
  const state = ss.paused ? "paused" : (ss.episode !== null && ss.episode !== undefined ? "running" : "–");
  setPill("pill-session", "session: " + state + (ss.episode != null ? ` · ep ${ss.episode} · step ${ss.step ?? "–"}` : ""), ss.paused ? "warn" : "");
  setPill("pill-task", `task: ${ss.task_id ?? "–"} · ${ss.phase ?? "–"}${ss.eval ? " · EVAL" : ""}`, ss.phase === "backward" ? "alt" : "");
  const newer = s.learner_policy_version != null && s.learner_policy_version !== s.policy_version ? ` (learner: v${s.learner_policy_version})` : "";
  // an actor acting with the mean of its newest versions (ensemble_versions) names them all
  const members = Array.isArray(ss.policy_members) && ss.policy_members.length > 1 ? ` (mean of v${ss.policy_members.join(", v")})` : "";
  setPill("pill-policy", "policy: v" + (s.policy_version ?? "–") + members + newer);
  setPill("pill-intervening", s.intervening || s.web_teleop ? "PERSON INTERVENING" : "autonomous", s.intervening || s.web_teleop ? "warn" : "ok");
  const arm = s.arm_status || {};
  const est = arm.estopped === true || arm.estopped === "true" || arm.estopped === "True";
  const armText = est ? "E-STOPPED" : (s.estop_sent ? "e-stop sent" : (arm.connected === false || arm.connected === "false" ? "arm disconnected" : (Object.keys(arm).length ? "arm ok" : "arm: –")));
  setPill("pill-estop", armText, est || s.estop_sent ? "bad" : (Object.keys(arm).length ? "ok" : ""));
  $("btn-reset-scene").classList.toggle("hidden", !(arm.sim === true || arm.sim === "true"));
  const alert = ss.alert;
  const ap = $("pill-alert");
  if (alert) { ap.textContent = "⚠ " + alert; ap.className = "pill bad"; } else ap.className = "pill hidden";
  const changes = (s.learner || {}).objective_changes || [];
  const op = $("pill-objective");
  if (changes.length) { op.textContent = "⚠ learner loss differs from its checkpoint's: " + changes.join("; "); op.className = "pill warn"; }
  else op.className = "pill hidden";
  for (const p of s.success_tail || []) successPts.push(p);
  const horizon = (s.now || Date.now() / 1000) - 60;
  while (successPts.length && successPts[0][0] < horizon) successPts.shift();
  drawSuccess(s);
  drawEvents(s.events || []);
}

function drawSuccess(s) {
  const sc = s.success;
  $("success-now").textContent = sc ? `${sc.task_id}: p=${sc.prob.toFixed(2)} (threshold ${sc.threshold.toFixed(2)})${sc.decision ? " → SUCCESS" : ""}` : "";
  const now = s.now || Date.now() / 1000;
  Charts.line($("chart-success"), {
    series: [{ name: "p(success)", color: "#3fb950", pts: successPts.map(p => [p[0] - now, p[1]]), width: 2 }],
    hlines: sc ? [{ y: sc.threshold, color: "#e5534b", label: "threshold" }] : [],
    ymin: 0, ymax: 1, xmin: -60, xmax: 0, xfmt: v => v.toFixed(0) + " s", empty: "no classifier output yet",
  });
}

let lastEventSeq = 0;
function drawEvents(events) {
  if (!events.length || events[events.length - 1].seq === lastEventSeq) return;
  const fresh = events.filter(e => e.seq > lastEventSeq);
  lastEventSeq = events[events.length - 1].seq;
  // a committed episode: refresh the browser and the learning numbers now, not at the next poll
  if (fresh.some(e => JSON.stringify(e).includes("commit"))) { refreshEpisodes(); refreshLearning(); }
  const box = $("events");
  box.innerHTML = "";
  for (const e of events.slice(-6).reverse()) {
    const div = document.createElement("div");
    const { seq, t, ...rest } = e;
    div.textContent = new Date(t * 1000).toLocaleTimeString() + "  " + JSON.stringify(rest);
    box.append(div);
  }
}

// ----------------------------------------------------------------------------- learning charts
async function refreshLearning() {
  try {
    const st = await api("GET", "/api/stats/learning");
    const rate = (pts, color, name) => ({
      name, color, dots: true,
      pts: pts.map(p => [p.n_before + p.n, p.rate]), band: pts.map(p => [p.n_before + p.n, p.lo, p.hi]),
    });
    Charts.line($("chart-rate"), { series: [rate(st.train, COLORS[0], "train"), rate(st.eval, COLORS[1], "eval")], ymin: 0, ymax: 1, empty: "no labelled episodes yet", xfmt: v => v.toFixed(0) + " eps" });
    Charts.line($("chart-hourly"), {
      series: [
        { name: "episodes/h", color: COLORS[0], dots: true, pts: st.hourly.map(h => [h.hour, h.episodes_per_hour]) },
        { name: "interventions/h", color: COLORS[1], dots: true, pts: st.hourly.map(h => [h.hour, h.interventions_per_hour]) },
      ], ymin: 0, empty: "no episodes yet", xfmt: v => "h" + v.toFixed(0),
    });
    const t = st.totals, d = st.disagreement;
    const pct = x => (x === null || x === undefined ? "–" : (100 * x).toFixed(0) + " %");
    const ci = o => o && o.n ? ` [${pct(o.lo)}, ${pct(o.hi)}]` : "";
    $("totals").innerHTML = "";
    const items = [
      ["episodes", t.episodes], ["train success", pct(t.train_success.rate) + ci(t.train_success) + ` (n=${t.train_success.n})`],
      ["eval success", pct(t.eval_success.rate) + ci(t.eval_success) + ` (n=${t.eval_success.n})`],
      ["episodes/h", t.episodes_per_hour != null ? t.episodes_per_hour.toFixed(1) : "–"],
      ["interventions/h", t.interventions_per_hour != null ? t.interventions_per_hour.toFixed(1) : "–"],
      ["classifier/human disagreement", pct(d.rate) + ci(d) + ` (n=${d.n})`],
    ];
    for (const [k, v] of items) {
      const div = document.createElement("div"); div.className = "stat";
      const b = document.createElement("b"); b.textContent = v; const s = document.createElement("span"); s.textContent = k;
      div.append(b, s); $("totals").append(div);
    }
  } catch (e) {
    if (e.status !== 404) console.warn("stats", e);
  }
  try {
    const h = await api("GET", "/api/learner/history");
    const pick = pred => h.keys.filter(pred).slice(0, 8).map((k, i) => ({
      name: k, color: COLORS[i % COLORS.length], pts: h.points.filter(p => p[k] !== undefined).map(p => [p.t, p[k]]),
    }));
    const tf = v => new Date(v * 1000).toLocaleTimeString();
    Charts.line($("chart-losses"), { series: pick(k => k.startsWith("losses/")), xfmt: tf, empty: "no learner metrics yet" });
    Charts.line($("chart-q"), { series: pick(k => k.startsWith("q/") || k === "calibration_gap"), xfmt: tf, empty: "no learner metrics yet" });
    Charts.line($("chart-ups"), { series: pick(k => k === "updates_per_s"), ymin: 0, xfmt: tf, empty: "no learner metrics yet" });
  } catch (e) { console.warn("learner", e); }
}

// ----------------------------------------------------------------------------- episode browser
let episodes = [], current = null, selSeg = null;

async function refreshEpisodes() {
  const q = new URLSearchParams();
  for (const [id, key] of [["f-task", "task"], ["f-phase", "phase"], ["f-outcome", "outcome"], ["f-eval", "eval"], ["f-intervention", "intervention"]]) {
    if ($(id).value) q.set(key, $(id).value);
  }
  q.set("limit", "200");
  let data;
  try { data = await api("GET", "/api/episodes?" + q); } catch (e) {
    $("ep-count").textContent = e.status === 404 ? "no episode store attached" : e.message; return;
  }
  episodes = data.episodes;
  $("ep-count").textContent = `${data.total} episodes`;
  const sel = $("f-task"), keep = sel.value;
  if (sel.options.length - 1 !== data.tasks.length) {
    sel.length = 1;
    for (const t of data.tasks) { const o = document.createElement("option"); o.value = o.textContent = t; sel.append(o); }
    sel.value = keep;
  }
  const tb = $("ep-table").querySelector("tbody");
  tb.innerHTML = "";
  for (const e of episodes) {
    const tr = document.createElement("tr");
    tr.dataset.id = e.id;
    if (current && current.id === e.id) tr.className = "sel";
    const cells = [e.id, e.task_id, e.phase, e.outcome ?? "–", e.outcome_source ?? "", e.eval ? "eval" : "", e.intervened ? e.intervention_segments.length || "yes" : "", e.n_steps, e.policy_versions.join(",")];
    cells.forEach((v, i) => {
      const td = document.createElement("td"); td.textContent = v;
      if (i === 3) td.className = e.outcome === "success" ? "ok" : e.outcome === "failure" ? "bad" : "";
      tr.append(td);
    });
    tr.addEventListener("click", () => openEpisode(e.id).catch(err => toast(err.message, true)));
    tb.append(tr);
  }
}

async function openEpisode(id) {
  const d = await api("GET", "/api/episodes/" + encodeURIComponent(id));
  const keepSeg = current && current.id === d.id ? selSeg : null;
  if (!current || current.id !== d.id) stopPlay();
  current = d; selSeg = keepSeg;
  $("player").classList.remove("hidden");
  $("pl-title").textContent = `episode ${d.id} · ${d.task_id} (${d.phase})${d.eval ? " · eval" : ""} · ${d.instruction}`;
  const oc = $("pl-outcome");
  oc.textContent = (d.outcome ?? "unlabelled") + (d.outcome_source ? " (" + d.outcome_source + ")" : "");
  oc.className = "pill " + (d.outcome === "success" ? "ok" : d.outcome === "failure" ? "bad" : "");
  const cs = $("pl-camera"), keep = cs.value;
  cs.length = 0;
  for (const c of d.cameras) { const o = document.createElement("option"); o.value = o.textContent = c; cs.append(o); }
  if (d.cameras.includes(keep)) cs.value = keep;
  const sl = $("pl-slider");
  sl.max = Math.max(0, d.n_steps - 1); sl.value = 0;
  for (const tr of $("ep-table").querySelectorAll("tbody tr")) tr.classList.toggle("sel", tr.dataset.id === d.id);
  const ul = $("pl-segments"); ul.innerHTML = "";
  if (!d.intervention_segments.length) { const li = document.createElement("li"); li.className = "muted"; li.textContent = "none"; ul.append(li); }
  for (const s of d.intervention_segments) {
    const li = document.createElement("li");
    li.dataset.segment = s.index;
    li.textContent = `#${s.index}: steps [${s.start}, ${s.end}) · ${s.reason || "no reason yet"}`;
    li.addEventListener("click", () => { selectSegment(s.index); $("pl-slider").value = s.start; showStep(s.start); });
    ul.append(li);
  }
  const hl = $("pl-history"); hl.innerHTML = "";
  for (const h of d.label_history) { const li = document.createElement("li"); li.textContent = JSON.stringify(h); hl.append(li); }
  selectSegment(selSeg);
  showStep(0);
}

let frameBusy = false, frameWanted = null, curveScale = null;
async function loadFrame(step) {
  frameWanted = step;
  if (frameBusy || !current || !current.cameras.length) return;
  frameBusy = true;
  try {
    while (frameWanted !== null) {
      const s = frameWanted; frameWanted = null;
      const r = await fetch(`/api/episodes/${encodeURIComponent(current.id)}/frames/${encodeURIComponent($("pl-camera").value)}/${s}`, { headers: authHeaders() });
      if (!r.ok) continue;
      const bmp = await createImageBitmap(await r.blob());
      const c = $("pl-frame");
      if (c.width !== bmp.width || c.height !== bmp.height) { c.width = bmp.width; c.height = bmp.height; }
      c.getContext("2d").drawImage(bmp, 0, 0); bmp.close();
      c.dataset.step = String(s);
    }
  } finally { frameBusy = false; }
}

function showStep(step) {
  if (!current) return;
  const se = current.series;
  $("pl-step").textContent = step;
  const p = se.success_prob ? se.success_prob[step] : null, r = se.reward ? se.reward[step] : null;
  $("pl-prob").textContent = p == null ? "–" : Number(p).toFixed(2);
  $("pl-reward").textContent = r == null ? "–" : Number(r).toFixed(2);
  const inSeg = current.intervention_segments.find(g => g.start <= step && step < g.end);
  if (inSeg) selectSegment(inSeg.index);
  drawCurve(step);
  loadFrame(step);
}

function drawCurve(step) {
  const se = current.series, idx = (se.success_prob || []).map((_, i) => i);
  const shade = [];
  (se.intervention || []).forEach((v, i) => { if (v) shade.push([i - 0.5, i + 0.5, "rgba(255,170,0,0.18)"]); });
  for (const s of current.intervention_segments) {
    shade.push([s.start - 0.5, s.end - 0.5, s.index === selSeg ? "rgba(74,163,255,0.35)" : "rgba(210,168,255,0.22)"]);
  }
  curveScale = Charts.line($("pl-curve"), {
    series: [
      { name: "p(success)", color: "#3fb950", pts: idx.map(i => [i, se.success_prob[i]]) },
      { name: "reward", color: "#f0883e", pts: idx.map(i => [i, se.reward ? se.reward[i] : null]) },
    ],
    ymin: Math.min(0, ...(se.reward || [0])), ymax: Math.max(1, ...(se.reward || [1])),
    xmin: 0, xmax: Math.max(1, current.n_steps - 1), vline: step, shade, xfmt: v => v.toFixed(0),
  });
}

function selectSegment(index) {
  selSeg = current && current.intervention_segments.some(g => g.index === index) ? index : null;
  for (const li of $("pl-segments").querySelectorAll("li")) li.classList.toggle("sel", Number(li.dataset.segment) === selSeg && li.dataset.segment !== undefined);
  const g = selSeg === null ? null : current.intervention_segments.find(x => x.index === selSeg);
  $("pl-seg-sel").textContent = g ? `segment #${g.index} [${g.start}, ${g.end})` : "no segment selected";
}

$("pl-slider").addEventListener("input", ev => showStep(Number(ev.target.value)));
// click the curve to jump to that step
$("pl-curve").addEventListener("click", ev => {
  if (!current || !curveScale) return;
  const c = $("pl-curve"), x = (ev.offsetX / c.clientWidth) * c.width;
  const step = Math.round(curveScale.xmin + (x - curveScale.px(curveScale.xmin)) / (curveScale.px(curveScale.xmax) - curveScale.px(curveScale.xmin)) * (curveScale.xmax - curveScale.xmin));
  const s = Math.max(0, Math.min(current.n_steps - 1, step));
  $("pl-slider").value = s; showStep(s);
});
// play back at the recorded step rate (from timestamps; 5 Hz if they are missing)
let playTimer = null;
function stopPlay() { clearTimeout(playTimer); playTimer = null; $("pl-play").textContent = "▶ play"; }
$("pl-play").addEventListener("click", () => {
  if (playTimer || !current) { stopPlay(); return; }
  $("pl-play").textContent = "❚❚ pause";
  const ts = current.series.timestamp || [];
  const tick = () => {
    let s = Number($("pl-slider").value) + 1;
    if (s >= current.n_steps) { stopPlay(); return; }
    $("pl-slider").value = s; showStep(s);
    const dt = ts[s + 1] != null && ts[s] != null ? (ts[s + 1] - ts[s]) * 1000 : 200;
    playTimer = setTimeout(tick, Math.max(30, Math.min(1000, dt)));
  };
  if (Number($("pl-slider").value) >= current.n_steps - 1) { $("pl-slider").value = 0; showStep(0); }
  playTimer = setTimeout(tick, 200);
});
$("pl-camera").addEventListener("change", () => loadFrame(Number($("pl-slider").value)));
$("pl-success").addEventListener("click", () => relabel("success"));
$("pl-failure").addEventListener("click", () => relabel("failure"));
$("pl-seg-save").addEventListener("click", async () => {
  if (!current || selSeg === null) { toast("select an intervention segment first", true); return; }
  const reason = $("pl-seg-other").value.trim() || $("pl-seg-reason").value;
  if (!reason) { toast("choose or type a reason", true); return; }
  await command(`/api/episodes/${encodeURIComponent(current.id)}/interventions/${selSeg}`, { reason }, "segment label").catch(() => {});
  $("pl-seg-other").value = "";
  const step = Number($("pl-slider").value);
  await openEpisode(current.id); $("pl-slider").value = step; showStep(step);
  refreshEpisodes(); refreshLearning();
});

async function relabel(outcome) {
  if (!current) return;
  try { await command(`/api/episodes/${encodeURIComponent(current.id)}/label`, { outcome }, "label"); } catch (e) { return; }
  const step = Number($("pl-slider").value);
  await openEpisode(current.id); $("pl-slider").value = step; showStep(step);
  refreshEpisodes(); refreshLearning();
}

for (const id of ["f-task", "f-phase", "f-outcome", "f-eval", "f-intervention"]) $(id).addEventListener("change", refreshEpisodes);

// ----------------------------------------------------------------------------- session control + teleop
for (const b of document.querySelectorAll("button.cmd")) {
  b.addEventListener("click", () => command("/api/session/command", { cmd: b.dataset.cmd }, b.dataset.cmd).catch(() => {}));
}
const estop = () => command("/api/estop", undefined, "E-STOP").catch(() => {});
$("btn-estop").addEventListener("click", estop);
$("btn-estop-clear").addEventListener("click", () => command("/api/estop/clear", undefined, "e-stop clear").catch(() => {}));
// a person re-stages the object in the same room: the session keeps practising the layout it started in
$("btn-reset-scene").addEventListener("click", () => command("/api/sim/reset_scene", {keep_layout: true}, "scene reset")
  .then(() => toast("scene reset sent: press Start to acknowledge an alert and go on")).catch(() => {}));

const held = new Map();  // source -> [axis, dir]
let gripper = 1, teleTimer = null;
const KEYS = { ArrowUp: [0, 1], ArrowDown: [0, -1], ArrowLeft: [1, 1], ArrowRight: [1, -1], PageUp: [2, 1], PageDown: [2, -1], o: [6, 1], c: [6, -1] };
const SPEED = 0.6;

function teleAction() {
  const a = [0, 0, 0, 0, 0, 0, gripper];
  for (const [axis, dir] of held.values()) {
    if (axis === 6) { gripper = dir; a[6] = dir; } else a[axis] = Math.max(-1, Math.min(1, a[axis] + dir * SPEED));
  }
  return a;
}

function teleTick() {
  if (!held.size) {
    clearInterval(teleTimer); teleTimer = null;
    $("teleop-state").textContent = "teleop idle";
    api("POST", "/api/teleop/release").catch(() => {});
    return;
  }
  api("POST", "/api/teleop", { action: teleAction() }).then(() => { $("teleop-state").textContent = "YOU ARE DRIVING"; })
    .catch(e => { $("teleop-state").textContent = "teleop refused: " + e.message; });
}

function press(src, axis, dir) {
  if (!$("teleop-arm").checked) { toast("tick 'web teleop' first", true); return; }
  held.set(src, [axis, dir]);
  if (!teleTimer) { teleTick(); teleTimer = setInterval(teleTick, 100); }
}
function releaseKey(src) { held.delete(src); }

document.addEventListener("keydown", ev => {
  const t = ev.target;  // typing in a field or moving the playback slider is not teleop
  if (t.tagName === "SELECT" || t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type !== "checkbox")) return;
  const k = KEYS[ev.key];
  if (k && $("teleop-arm").checked) { ev.preventDefault(); if (!ev.repeat) press("key:" + ev.key, k[0], k[1]); }
});
document.addEventListener("keyup", ev => releaseKey("key:" + ev.key));
window.addEventListener("blur", () => held.clear());
for (const b of document.querySelectorAll("button.tp")) {
  const src = "btn:" + b.dataset.axis + b.dataset.dir;
  b.addEventListener("pointerdown", () => press(src, Number(b.dataset.axis), Number(b.dataset.dir)));
  for (const ev of ["pointerup", "pointerleave", "pointercancel"]) b.addEventListener(ev, () => releaseKey(src));
}
$("teleop-arm").addEventListener("change", ev => { if (!ev.target.checked) held.clear(); $("teleop-state").textContent = ev.target.checked ? "teleop armed" : "teleop off"; });

// ----------------------------------------------------------------------------- start
(async function main() {
  try { healthInfo = await api("GET", "/api/health"); } catch (e) { healthInfo = null; }
  if (healthInfo && !healthInfo.robot) {
    for (const b of document.querySelectorAll("header .controls button, .teleop button, #teleop-arm")) b.disabled = true;
    $("teleop-state").textContent = "store browser: no robot connected";
  }
  checkToken();
  connectLive();
  drawSuccess({});
  refreshLearning(); refreshEpisodes();
  setInterval(refreshLearning, 5000);
  setInterval(refreshEpisodes, 10000);
  dash.ready = true;
})();
