// The dashboard page, live (server-sent events from /events) or as a report (the events
// embedded in the file, gzip + base64). Both feed the same three kinds of event:
//   meta   - the resolved plan, once
//   series - time-series points from a period index on (reset: start over)
//   state  - cumulative results: metrics, checks, thresholds, funnel
// Every chart element carries data-points (how many points it drew) for tests.
"use strict";

const S = { meta: null, epoch: -1, period: 1000, start: 0, closed: 0, series: new Map(), state: null };
const charts = new Map();
const COLORS = ["#2f6fde", "#e5603b", "#1f9d6b", "#9b51e0", "#d4a017", "#0fa3b1", "#c2185b", "#5d6d7e"];

const BUILTIN = new Set(["vus", "vus_max", "iterations", "iteration_duration", "dropped_iterations",
  "data_sent", "data_received", "checks", "http_reqs", "http_req_duration", "http_req_waiting",
  "http_req_sending", "http_req_receiving", "http_req_blocked", "http_req_connecting",
  "http_req_tls_handshaking", "http_req_looking_up", "http_req_failed", "group_duration"]);

function apply(kind, doc) {
  if (kind === "meta") { S.meta = doc; renderPlan(); }
  else if (kind === "series") { applySeries(doc); }
  else if (kind === "state") { S.state = doc; renderState(); }
  scheduleRender();
}

function applySeries(d) {
  if (d.reset || d.epoch !== S.epoch) { S.series.clear(); S.epoch = d.epoch; }
  S.period = d.period_ms; S.start = d.start_ms; S.closed = Math.max(S.closed, d.closed);
  if (d.reset) S.closed = d.closed;
  for (const s of d.series) {
    const key = s.metric + "|" + (s.tag ? s.tag.join("=") : "");
    let e = S.series.get(key);
    if (!e) { e = { metric: s.metric, type: s.type, contains: s.contains, tag: s.tag, first: s.first, values: {} }; S.series.set(key, e); }
    for (const [field, vals] of Object.entries(s.values)) {
      const arr = e.values[field] || (e.values[field] = []);
      const off = s.first - e.first;
      for (let i = 0; i < vals.length; i++) arr[off + i] = vals[i];
    }
  }
}

function get(metric, tag) { return S.series.get(metric + "|" + (tag ? tag.join("=") : "")); }

// One line: the values of a series field per period, aligned to the global period index.
function line(e, pick) {
  const y = new Array(S.closed).fill(null);
  if (!e) return y;
  const secs = S.period / 1000;
  const v = e.values;
  for (let i = e.first; i < S.closed; i++) {
    const j = i - e.first;
    let x = null;
    switch (pick) {
      case "rate": x = v.sum && v.sum[j] != null ? v.sum[j] / secs : null; break;
      case "ratio": x = v.total && v.total[j] ? 100 * v.passes[j] / v.total[j] : null; break;
      case "samples": x = v.total ? v.total[j] : (v.sum ? v.sum[j] : null); break;
      default: x = v[pick] ? v[pick][j] : null;
    }
    y[i] = x === undefined ? null : x;
  }
  return y;
}

function xs() {
  const x = new Array(S.closed);
  for (let i = 0; i < S.closed; i++) x[i] = (S.start + (i + 1) * S.period) / 1000;
  return x;
}

// A chart: lines = [{label, y}]. Created once, data replaced on every render.
function chart(container, id, title, unit, lines) {
  let c = charts.get(id);
  const data = [xs(), ...lines.map(l => l.y)];
  const points = lines.reduce((n, l) => n + l.y.filter(v => v != null).length, 0);
  if (!c) {
    const el = document.createElement("div");
    el.className = "chart"; el.dataset.chart = id;
    el.innerHTML = "<h3></h3><div class=plot></div>";
    el.querySelector("h3").textContent = title + (unit ? " (" + unit + ")" : "");
    container.appendChild(el);
    const width = Math.max(300, el.clientWidth - 14);
    const opts = {
      width, height: 220,
      series: [{}, ...lines.map((l, i) => ({ label: l.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false }))],
      axes: [{}, { size: 56, values: (u, vals) => vals.map(si) }],
      legend: { live: true },
    };
    c = { el, plot: new uPlot(opts, data, el.querySelector(".plot")) };
    charts.set(id, c);
  } else {
    c.plot.setData(data);
  }
  c.el.dataset.points = String(points);
}

// Axis labels: 1.5k, 2M (room for six characters).
function si(v) {
  if (v == null) return "";
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toPrecision(3) + "G";
  if (a >= 1e6) return +(v / 1e6).toPrecision(3) + "M";
  if (a >= 1e4) return +(v / 1e3).toPrecision(3) + "k";
  return +v.toPrecision(4) + "";
}

let pending = false;
function scheduleRender() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; renderCharts(); });
}

function trendLines(metric, tag, stats) {
  const e = get(metric, tag);
  return stats.map(s => ({ label: s, y: line(e, s) }));
}

function renderCharts() {
  if (!S.closed) return;
  const main = document.getElementById("charts");
  chart(main, "vus", "Virtual users", "", [
    { label: "VUs", y: line(get("vus"), "value") }, { label: "max VUs", y: line(get("vus_max"), "value") }]);
  chart(main, "http_reqs", "Request rate", "/s", [{ label: "requests", y: line(get("http_reqs"), "rate") }]);
  chart(main, "http_req_failed", "Failed requests", "%", [{ label: "failed", y: line(get("http_req_failed"), "ratio") }]);
  chart(main, "http_req_duration", "Request duration", "ms", trendLines("http_req_duration", null, ["p50", "p90", "p95", "p99"]));
  chart(main, "phases", "HTTP timing phases, average", "ms",
    ["blocked", "connecting", "tls_handshaking", "sending", "waiting", "receiving"].map(p => ({ label: p, y: line(get("http_req_" + p), "avg") })));
  chart(main, "iterations", "Iterations and dropped iterations", "/s", [
    { label: "iterations", y: line(get("iterations"), "rate") }, { label: "dropped", y: line(get("dropped_iterations"), "rate") }]);
  chart(main, "iteration_duration", "Iteration duration", "ms", trendLines("iteration_duration", null, ["p50", "p95", "max"]));
  if (get("vu_sleep_lag")) chart(main, "vu_sleep_lag", "Generator lag (oversleep)", "ms", trendLines("vu_sleep_lag", null, ["p50", "p99", "max"]));
  chart(main, "data", "Data", "bytes/s", [
    { label: "sent", y: line(get("data_sent"), "rate") }, { label: "received", y: line(get("data_received"), "rate") }]);

  // Per scenario: request rate and iteration duration.
  const scenarios = [...new Set([...S.series.values()].filter(e => e.tag && e.tag[0] === "scenario").map(e => e.tag[1]))];
  if (scenarios.length) {
    document.getElementById("scenario-section").hidden = false;
    const box = document.getElementById("scenario-charts");
    chart(box, "sc_reqs", "Request rate by scenario", "/s", scenarios.map(s => ({ label: s, y: line(get("http_reqs", ["scenario", s]), "rate") })));
    chart(box, "sc_iters", "Iterations by scenario", "/s", scenarios.map(s => ({ label: s, y: line(get("iterations", ["scenario", s]), "rate") })));
    chart(box, "sc_dur", "Iteration duration p95 by scenario", "ms", scenarios.map(s => ({ label: s, y: line(get("iteration_duration", ["scenario", s]), "p95") })));
  }

  // Every custom metric over time.
  const custom = [...S.series.values()].filter(e => !e.tag && !BUILTIN.has(e.metric));
  if (custom.length) {
    document.getElementById("custom-section").hidden = false;
    const box = document.getElementById("custom-charts");
    for (const e of custom) {
      const unit = e.contains === "time" ? "ms" : e.contains === "data" ? "bytes" : "";
      if (e.type === "counter") chart(box, "m_" + e.metric, e.metric, "/s", [{ label: e.metric, y: line(e, "rate") }]);
      else if (e.type === "rate") chart(box, "m_" + e.metric, e.metric, "% non-zero", [{ label: e.metric, y: line(e, "ratio") }]);
      else if (e.type === "gauge") chart(box, "m_" + e.metric, e.metric, unit, [{ label: e.metric, y: line(e, "value") }]);
      else chart(box, "m_" + e.metric, e.metric, unit, ["avg", "p50", "p95", "p99"].map(s => ({ label: s, y: line(e, s) })));
    }
  }

  // The funnel over time: samples per step per second.
  const f = S.meta && S.meta.funnel;
  if (f) {
    const steps = funnelSteps();
    chart(document.getElementById("funnel-charts"), "funnel_steps", f.metric + " by " + f.tag, "/s",
      steps.map(s => ({ label: s, y: line(get(f.metric, [f.tag, s]), "samples").map(v => v == null ? null : v / (S.period / 1000)) })));
  }
}

function funnelSteps() {
  const f = S.meta.funnel;
  const steps = [...f.steps];
  for (const e of S.series.values()) if (e.metric === f.metric && e.tag && e.tag[0] === f.tag && !steps.includes(e.tag[1])) steps.push(e.tag[1]);
  if (S.state && S.state.funnel) for (const r of S.state.funnel.steps) if (!steps.includes(r.step)) steps.push(r.step);
  return steps;
}

function fmt(v, contains) {
  if (v == null || Number.isNaN(v)) return "–";
  if (contains === "time") return v >= 1000 ? (v / 1000).toFixed(2) + "s" : v.toFixed(2) + "ms";
  if (contains === "data") { const u = ["B", "kB", "MB", "GB"]; let i = 0; while (v >= 1000 && i < 3) { v /= 1000; i++; } return v.toFixed(1) + " " + u[i]; }
  return Number.isInteger(v) ? String(v) : v.toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
}

function rows(table, head, body) {
  const t = document.getElementById(table);
  t.innerHTML = "";
  const tr = t.insertRow(); for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); }
  for (const r of body) { const row = t.insertRow(); for (const c of r) { const td = row.insertCell(); if (c && c.cls) { td.className = c.cls; td.textContent = c.text; } else td.textContent = c; } }
}

function renderState() {
  const st = S.state;
  const vus = st.metrics.vus ? st.metrics.vus.values.value : 0;
  const reqs = st.metrics.http_reqs ? st.metrics.http_reqs.values.count : 0;
  document.getElementById("status").textContent = (S.meta ? S.meta.script.split("/").pop() + " · " : "") +
    (st.done ? "finished after " : "running for ") + (st.elapsed_ms / 1000).toFixed(1) + "s · " + vus + " VUs · " + reqs + " requests";
  rows("thresholds", ["metric", "threshold", "value", "state"], st.thresholds.map(t => [t.key, t.source, fmt(t.value), t.ok ? { cls: "ok", text: "✓ pass" } : { cls: "bad", text: "✗ fail" }]));
  const checks = [];
  (function walk(g) { for (const c of g.checks) checks.push(c); for (const s of g.groups) walk(s); })(st.root_group);
  rows("checks", ["check", "group", "passes", "fails", "rate"], checks.map(c => {
    const n = c.passes + c.fails;
    return [c.name, c.path.split("::").slice(1, -1).join(" › "), c.passes, c.fails,
      { cls: c.fails ? "bad" : "ok", text: n ? (100 * c.passes / n).toFixed(2) + "%" : "–" }];
  }));
  rows("summary", ["metric", "type", "values"], Object.entries(st.metrics).map(([name, m]) => [name, m.type,
    Object.entries(m.values).map(([k, v]) => k + "=" + fmt(v, (k === "count" || k === "rate" || k === "passes" || k === "fails") ? "" : m.contains)).join("  ")]));
  if (S.meta && S.meta.funnel && st.funnel) renderFunnel(st.funnel);
}

function renderFunnel(totals) {
  const f = S.meta.funnel;
  document.getElementById("funnel-section").hidden = false;
  document.getElementById("funnel-name").textContent = f.metric + " by " + f.tag;
  const byStep = new Map(totals.steps.map(r => [r.step, r]));
  const ol = document.getElementById("funnel");
  ol.innerHTML = "";
  let prev = null;
  for (const step of funnelSteps()) {
    const r = byStep.get(step) || { count: 0 };
    const li = document.createElement("li");
    li.dataset.step = step;
    li.dataset.count = String(r.count);
    const conv = prev ? (prev.count ? (100 * r.count / prev.count).toFixed(1) + "% of previous" : "–") : "entry step";
    li.innerHTML = "<span></span><b></b><span></span><span></span>";
    const [name, count, ok, c] = li.children;
    name.textContent = step; count.textContent = r.count;
    ok.textContent = r.passes != null ? (r.count ? (100 * r.passes / r.count).toFixed(2) : "–") + "% succeeded" : "";
    c.textContent = conv;
    ol.appendChild(li);
    prev = r;
  }
}

function renderPlan() {
  const m = S.meta;
  const box = document.getElementById("plan");
  box.innerHTML = "<table id=plan-table></table><pre></pre>";
  rows("plan-table", ["", ""], [["engine", m.engine], ["script", m.script], ["seed", m.seed == null ? "random" : m.seed],
    ["segment", m.segment], ["workers", m.workers], ["time scale", m.time_scale], ["max VUs", m.max_vus],
    ["max duration", (m.max_duration_ms / 1000) + "s"], ["started", new Date(m.started_ms).toISOString()]]);
  box.querySelector("pre").textContent = JSON.stringify(m.options, null, 2);
}

async function loadReport(b64) {
  const bytes = Uint8Array.from(atob(b64), ch => ch.charCodeAt(0));
  const text = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
  for (const [kind, doc] of JSON.parse(text)) apply(kind, doc);
  document.body.dataset.loaded = "report";
}

function connect() {
  const es = new EventSource("events");
  for (const kind of ["meta", "series", "state"]) {
    es.addEventListener(kind, ev => { apply(kind, JSON.parse(ev.data)); document.body.dataset.loaded = "live"; });
  }
  // The run is over; the stream stays open so `open` mode can tell when the tab closes.
  es.addEventListener("end", () => { document.body.dataset.done = "true"; });
}

if (window.ENGINE_REPORT) loadReport(window.ENGINE_REPORT); else connect();
