// Switchyard dashboard: reads the admin API (same origin) and draws it. No dependencies, no
// network beyond this gateway. The admin token lives in this tab's sessionStorage only.
"use strict";

(function () {
  const TOKEN_KEY = "switchyard.adminToken";
  const REFRESH_MS = 5000;
  const FILTERS = ["cloud", "provider", "region", "model", "team"];
  const WINDOWS = ["5m", "15m", "1h", "6h", "24h", "7d"];
  const CLOUD_COLORS = {
    azure: "#2f7fd8", aws: "#f29d38", gcp: "#34a853", oci: "#c74634", openai: "#10a37f",
    anthropic: "#c98b5b", coreweave: "#7b5cd6", gpu_cloud: "#d65c9a", self_hosted: "#6b7280",
  };
  const PALETTE = ["#4f6bed", "#12a594", "#f08c2e", "#d6457a", "#8e5bd8", "#2aa3d6", "#b8a52c",
    "#e0603a", "#3f9d5a", "#6b7a8f", "#c2410c", "#0e7490"];
  const NONE = "(none)";

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // ---------- formatting (exported for tests through window.switchyard) ----------
  const nf = new Intl.NumberFormat("en-US");
  function fmtInt(n) { return nf.format(Math.round(n)); }
  function fmtUsd(v) {
    const a = Math.abs(v);
    if (a === 0) return "$0.00";
    if (a >= 1000) return "$" + nf.format(Math.round(v));
    if (a >= 1) return "$" + v.toFixed(2);
    if (a >= 0.01) return "$" + v.toFixed(3);
    return "$" + v.toPrecision(2);
  }
  function fmtCompact(n) {
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "B";
    if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e4) return (n / 1e3).toFixed(a >= 1e5 ? 0 : 1) + "k";
    return fmtInt(n);
  }
  function fmtPct(f) {
    if (f === 0) return "0%";
    const p = f * 100;
    if (p < 0.1) return "<0.1%";
    return (p >= 10 ? p.toFixed(0) : p.toFixed(1)) + "%";
  }
  function fmtMs(ms) {
    if (ms == null) return "–";
    if (ms >= 10000) return (ms / 1000).toFixed(1) + " s";
    if (ms >= 1000) return (ms / 1000).toFixed(2) + " s";
    return fmtInt(ms) + " ms";
  }
  function fmtPair(p) { return p ? fmtMs(p.p50) + " / " + fmtMs(p.p95) : "–"; }
  // "80 / 156 ms": one unit when both are below a second (KPI cards).
  function fmtPairShort(p) {
    if (!p) return "–";
    return p.p95 < 1000 ? fmtInt(p.p50) + " / " + fmtInt(p.p95) + " ms" : fmtPair(p);
  }
  // Axis labels of money: one number of decimals for every tick, enough for the step.
  function usdAxis(max) {
    const step = max / 4;
    if (step >= 1) return (v) => "$" + nf.format(v);
    let decimals = 2;
    while (decimals < 9 && Math.abs(step * Math.pow(10, decimals) - Math.round(step * Math.pow(10, decimals))) > 1e-6) decimals += 1;
    return (v) => "$" + v.toFixed(decimals);
  }
  function fmtTime(ms, withSeconds) {
    const d = new Date(ms);
    const two = (n) => String(n).padStart(2, "0");
    let s = two(d.getHours()) + ":" + two(d.getMinutes());
    if (withSeconds) s += ":" + two(d.getSeconds());
    return s;
  }
  function fmtDay(ms) {
    const d = new Date(ms);
    return d.toLocaleDateString("en-US", { month: "short", day: "numeric" });
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  // The top of an axis with four ticks, each a round step (1, 2 or 5 times a power of ten).
  function niceMax(v) {
    if (!(v > 0)) return 4;
    const raw = v / 4;
    const e = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * e >= raw * (1 - 1e-9)) return 4 * m * e;
    return 40 * e;
  }

  // ---------- state ----------
  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    window: "15m",
    filters: {},
    historyBy: "team",
    until: null,
    paused: false,
    timer: null,
    generation: 0,
    inflight: false,
    last: null,
    options: null,
    colorIndex: {},
  };

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (WINDOWS.includes(p.get("window"))) state.window = p.get("window");
    for (const f of FILTERS) {
      const v = p.get(f);
      if (v) state.filters[f] = v; else delete state.filters[f];
    }
    if (p.get("by")) state.historyBy = p.get("by");
    // A fixed window end (Unix ms) makes a shareable, unmoving view; absent means live.
    state.until = /^[0-9]{10,16}$/.test(p.get("until") || "") ? p.get("until") : null;
  }
  function writeHash() {
    const p = new URLSearchParams();
    p.set("window", state.window);
    for (const f of FILTERS) if (state.filters[f]) p.set(f, state.filters[f]);
    if (state.historyBy !== "team") p.set("by", state.historyBy);
    if (state.until) p.set("until", state.until);
    history.replaceState(null, "", "#" + p.toString());
  }
  function overviewQuery() {
    const p = new URLSearchParams();
    p.set("window", state.window);
    for (const f of FILTERS) if (state.filters[f]) p.set(f, state.filters[f]);
    if (state.until) p.set("until", state.until);
    return p.toString();
  }

  // ---------- API ----------
  class AuthError extends Error {}
  async function api(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
    if (r.status === 401) throw new AuthError("The admin token was not accepted.");
    let body = null;
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const msg = body && body.error && body.error.message ? body.error.message : r.status + " " + r.statusText;
      throw new Error(path.split("?")[0] + ": " + msg);
    }
    return body;
  }
  function monthStart() {
    const d = new Date();
    return d.getUTCFullYear() + "-" + String(d.getUTCMonth() + 1).padStart(2, "0") + "-01";
  }

  // ---------- colors ----------
  function colorFor(dim, name) {
    if (name === NONE) return "#a0a7b4";
    if (dim === "cloud" && CLOUD_COLORS[name]) return CLOUD_COLORS[name];
    // First-seen order per dimension, kept for the page's life: a filter that hides some
    // names must not recolour the others (the options lists change with the window).
    const key = dim + ":" + name;
    if (!(key in state.colorIndex)) {
      const taken = Object.keys(state.colorIndex).filter((k) => k.startsWith(dim + ":")).length;
      state.colorIndex[key] = taken;
    }
    return PALETTE[state.colorIndex[key] % PALETTE.length];
  }

  // ---------- charts ----------
  function timeAxis(buckets, x, bw, height, windowSecs) {
    const n = buckets.length;
    const want = Math.max(2, Math.min(6, Math.floor((x(n) - x(0)) / 90)));
    const step = Math.max(1, Math.round(n / want));
    const withSeconds = windowSecs <= 900;
    const multiDay = windowSecs > 86400;
    const right = x(n - 1) + bw;
    let out = "";
    for (let i = 0; i < n; i += step) {
      const t = buckets[i].start_ms;
      const label = multiDay ? fmtDay(t) + " " + fmtTime(t) : fmtTime(t, withSeconds);
      const cx = x(i) + bw / 2;
      if (cx + label.length * 3.4 > right) break; // would run off the right edge
      out += `<text x="${cx}" y="${height + 16}" text-anchor="middle">${esc(label)}</text>`;
    }
    return out;
  }
  function yAxis(max, width, height, left, fmt) {
    let out = "";
    for (let k = 0; k <= 4; k++) {
      const v = (max * k) / 4;
      const y = height - (height * k) / 4;
      out += `<line class="${k === 0 ? "base-line" : "grid-line"}" x1="${left}" x2="${width}" y1="${y}" y2="${y}"/>`;
      out += `<text x="${left - 6}" y="${y + 4}" text-anchor="end">${esc(fmt(v))}</text>`;
    }
    return out;
  }

  function volumeChart(el, o) {
    const buckets = o.timeline;
    const width = Math.max(el.clientWidth, 300), height = el.clientHeight - 24, left = 44;
    let max = niceMax(Math.max(1, ...buckets.map((b) => b.requests)));
    if ((max / 4) % 1) max = 4 * Math.ceil(max / 4); // whole requests per tick
    const n = buckets.length, span = width - left;
    const slot = span / n, bw = Math.max(1, slot * 0.72);
    const x = (i) => left + i * slot + (slot - bw) / 2;
    const y = (v) => height - (v / max) * height;
    let bars = "";
    buckets.forEach((b, i) => {
      if (!b.requests) return;
      const ok = b.requests - b.errors;
      const tip = `${fmtTime(b.start_ms, true)} · ${fmtInt(b.requests)} requests, ${fmtInt(b.errors)} errors, ${fmtInt(b.failovers)} failovers`;
      bars += `<g data-bucket="${b.start_ms}" data-requests="${b.requests}"><title>${esc(tip)}</title>`;
      if (ok > 0) bars += `<rect class="bar-ok" x="${x(i)}" y="${y(b.requests)}" width="${bw}" height="${height - y(ok)}" rx="1.5"/>`;
      if (b.errors > 0) bars += `<rect class="bar-err" x="${x(i)}" y="${y(b.requests)}" width="${bw}" height="${height - y(b.errors)}" rx="1.5"/>`;
      if (b.failovers > 0) bars += `<circle class="fo-dot" cx="${x(i) + bw / 2}" cy="${Math.max(4, y(b.requests) - 6)}" r="3.2"/>`;
      bars += "</g>";
    });
    el.innerHTML = `<svg role="img" aria-label="Requests per ${o.window.bucket_seconds} s">
      ${yAxis(max, width, height, left, (v) => fmtCompact(v))}${bars}${timeAxis(buckets, x, bw, height, o.window.seconds)}</svg>`;
    $("#volume-legend").innerHTML =
      `<span class="key"><i class="sw" style="background:#4f6bed"></i>ok</span>` +
      `<span class="key"><i class="sw" style="background:#d64545"></i>errors</span>` +
      `<span class="key"><i class="sw" style="background:#d98a16;border-radius:50%"></i>failovers</span>` +
      `<span class="key">per ${o.window.bucket_seconds >= 60 ? o.window.bucket_seconds / 60 + " min" : o.window.bucket_seconds + " s"}</span>`;
  }

  function spendChart(el, o) {
    const buckets = o.timeline;
    const width = Math.max(el.clientWidth, 300), height = el.clientHeight - 24, left = 56;
    const max = niceMax(Math.max(1e-9, ...buckets.map((b) => b.cost_usd)));
    const n = buckets.length, span = width - left, slot = span / n;
    const x = (i) => left + i * slot;
    const cx = (i) => x(i) + slot / 2;
    const y = (v) => height - (v / max) * height;
    let line = "", total = 0, cum = [];
    buckets.forEach((b, i) => {
      line += (i ? "L" : "M") + cx(i).toFixed(1) + "," + y(b.cost_usd).toFixed(1);
      total += b.cost_usd;
      cum.push(total);
    });
    const area = line + `L${cx(n - 1).toFixed(1)},${height}L${cx(0).toFixed(1)},${height}Z`;
    let dots = "";
    buckets.forEach((b, i) => {
      if (b.cost_nanos > 0) dots += `<circle cx="${cx(i)}" cy="${y(b.cost_usd)}" r="6" fill="transparent" data-bucket="${b.start_ms}" data-cost="${b.cost_nanos}"><title>${esc(fmtTime(b.start_ms, true) + " · " + fmtUsd(b.cost_usd))}</title></circle>`;
    });
    el.innerHTML = `<svg role="img" aria-label="Spend per bucket">
      <defs><linearGradient id="spend-grad" x1="0" x2="0" y1="0" y2="1"><stop offset="0" class="grad-top"/><stop offset="1" class="grad-bottom"/></linearGradient></defs>
      ${yAxis(max, width, height, left, usdAxis(max))}
      <path class="area" d="${area}"/><path class="spend-line" d="${line}"/>${dots}
      ${timeAxis(buckets, (i) => x(i), slot, height, o.window.seconds)}</svg>`;
    $("#spend-legend").innerHTML =
      `<span class="key"><i class="sw" style="background:#10a37f"></i>spend per ${o.window.bucket_seconds >= 60 ? o.window.bucket_seconds / 60 + " min" : o.window.bucket_seconds + " s"}</span>` +
      `<span class="key">window total <b>&nbsp;${esc(fmtUsd(o.totals.cost_usd))}</b></span>`;
  }

  function donut(el, groups, total) {
    if (!groups.length) { el.innerHTML = `<div class="empty">No traffic in this window</div>`; return; }
    const r = 70, w = 22, c = 85;
    let a0 = -Math.PI / 2, paths = "";
    const useCost = total > 0;
    const value = (g) => (useCost ? g.cost_share : g.request_share);
    groups.forEach((g) => {
      const f = value(g);
      if (f <= 0) return;
      const a1 = a0 + Math.min(f, 0.99999) * 2 * Math.PI;
      const large = a1 - a0 > Math.PI ? 1 : 0;
      const p = (a, rad) => [c + rad * Math.cos(a), c + rad * Math.sin(a)].map((v) => v.toFixed(2)).join(",");
      paths += `<path data-name="${esc(g.name)}" data-value="${g.cost_nanos}" fill="${colorFor("cloud", g.name)}" d="M${p(a0, r)}A${r},${r} 0 ${large} 1 ${p(a1, r)}L${p(a1, r - w)}A${r - w},${r - w} 0 ${large} 0 ${p(a0, r - w)}Z"><title>${esc(g.name + " · " + fmtUsd(g.cost_usd) + " · " + fmtPct(f))}</title></path>`;
      a0 = a1;
    });
    const legend = groups.map((g) =>
      `<div class="row" data-name="${esc(g.name)}"><i class="sw" style="background:${colorFor("cloud", g.name)}"></i><span class="name">${esc(g.name)}</span><span class="v">${esc(fmtUsd(g.cost_usd))}</span><span class="pct">${esc(fmtPct(value(g)))}</span></div>`).join("");
    el.innerHTML = `<svg class="donut" viewBox="0 0 170 170" role="img" aria-label="Spend by cloud">${paths}
      <text class="center-big" x="85" y="86" text-anchor="middle">${esc(fmtUsd(total))}</text>
      <text class="center-small" x="85" y="104" text-anchor="middle">${groups.length} cloud${groups.length === 1 ? "" : "s"}</text></svg>
      <div class="donut-legend">${legend}</div>`;
  }

  function barList(el, dim, groups, limit) {
    if (!groups.length) { el.innerHTML = `<div class="empty">No traffic in this window</div>`; return; }
    const shown = groups.slice(0, limit || 8);
    const maxCost = Math.max(...shown.map((g) => g.cost_nanos), 1);
    const maxReq = Math.max(...shown.map((g) => g.requests), 1);
    el.innerHTML = shown.map((g) => `
      <div class="bar-row" data-name="${esc(g.name)}" data-value="${g.cost_nanos}" data-requests="${g.requests}" title="${esc(g.name + ": " + fmtUsd(g.cost_usd) + ", " + fmtInt(g.requests) + " requests")}">
        <span class="name">${esc(g.name)}</span>
        <span class="track"><span class="fill" style="width:${((g.cost_nanos / maxCost) * 100).toFixed(2)}%;background:${colorFor(dim, g.name)}"></span><span class="reqs" style="width:${((g.requests / maxReq) * 100).toFixed(2)}%"></span></span>
        <span class="v">${esc(fmtUsd(g.cost_usd))}<small>${esc(fmtCompact(g.requests))} req · ${esc(fmtPct(g.cost_share))}</small></span>
      </div>`).join("") + (groups.length > shown.length ? `<div class="hint">+ ${groups.length - shown.length} more</div>` : "");
  }

  function latencyChart(el, deployments) {
    const rows = deployments.filter((d) => d.latency_ms || d.ttft_ms);
    if (!rows.length) { el.innerHTML = `<div class="empty">No successful requests in this window</div>`; return; }
    const maxL = niceMax(Math.max(1, ...rows.map((d) => (d.latency_ms ? d.latency_ms.p95 : 0))));
    const maxT = niceMax(Math.max(1, ...rows.map((d) => (d.ttft_ms ? d.ttft_ms.p95 : 0))));
    const cell = (p, max, cls) => p
      ? `<div class="lat-cell"><span class="lat-track ${cls}"><span class="p95" style="width:${((p.p95 / max) * 100).toFixed(2)}%"></span><span class="p50" style="width:${((p.p50 / max) * 100).toFixed(2)}%"></span></span><span class="lat-val">${esc(fmtPair(p))}</span></div>`
      : `<div class="lat-cell"><span class="lat-track ${cls}"></span><span class="lat-val">–</span></div>`;
    el.innerHTML = `<div class="lat-head"><span>Deployment</span><span>Latency (scale ${esc(fmtMs(maxL))})</span><span>Time to first token (scale ${esc(fmtMs(maxT))})</span></div>` +
      rows.map((d) => `<div class="lat-row" data-deployment="${esc(d.deployment)}" data-p50="${d.latency_ms ? d.latency_ms.p50 : ""}" data-p95="${d.latency_ms ? d.latency_ms.p95 : ""}">
        <span class="name">${esc(d.deployment)}<small>${esc(d.cloud + " · " + d.region)}</small></span>
        ${cell(d.latency_ms, maxL, "")}${cell(d.ttft_ms, maxT, "ttft")}</div>`).join("");
  }

  // The breaker badge's tooltip: why it opened, when it probes next, how often it tripped.
  function breakerTitle(d) {
    const parts = [d.breaker_reason || "traffic flows"];
    if (d.breaker_next_probe_ms != null) parts.push(`next probe in ${fmtMs(d.breaker_next_probe_ms)}`);
    if (d.breaker_failed_probes) parts.push(`${d.breaker_failed_probes} failed probe${d.breaker_failed_probes === 1 ? "" : "s"}`);
    if (d.trips) parts.push(`opened ${d.trips} time${d.trips === 1 ? "" : "s"}`);
    return parts.join(" · ");
  }

  function deploymentsTable(o) {
    const tbody = $("#deployments tbody");
    const rows = o.deployments;
    if (!rows.length) { tbody.innerHTML = `<tr><td colspan="10" class="empty">No deployments match the filters</td></tr>`; return; }
    tbody.innerHTML = rows.map((d) => {
      const badge = `<span class="badge ${d.breaker}" title="${esc(breakerTitle(d))}">${esc(d.breaker.replace("_", "-"))}</span>` +
        (d.cooling_down ? `<span class="badge cooling" title="resting after a 429 or Retry-After">cooling</span>` : "");
      return `<tr data-deployment="${esc(d.deployment)}" data-requests="${d.requests}" data-errors="${d.errors}" data-failovers="${d.failovers}" data-breaker="${d.breaker}" data-trips="${d.trips}" data-failed-probes="${d.breaker_failed_probes}" data-breaker-detail="${esc(breakerTitle(d))}">
        <td><b>${esc(d.deployment)}</b>${d.in_catalog ? "" : ` <span class="chip warn">not in config</span>`}</td>
        <td class="dim"><i class="sw" style="background:${colorFor("cloud", d.cloud)};width:8px;height:8px;border-radius:50%"></i> ${esc(d.cloud)} · ${esc(d.region)}</td>
        <td class="num">${esc(fmtInt(d.requests))}</td>
        <td class="num ${d.errors ? "hot" : ""}">${esc(fmtInt(d.errors))}</td>
        <td class="num ${d.failed_attempts ? "warm" : ""}">${esc(fmtInt(d.failed_attempts))}</td>
        <td class="num ${d.failovers ? "warm" : ""}">${esc(fmtInt(d.failovers))}</td>
        <td class="num">${esc(fmtPair(d.latency_ms))}</td>
        <td class="num">${esc(fmtPair(d.ttft_ms))}</td>
        <td class="num">${esc(fmtUsd(d.cost_usd))}</td>
        <td>${badge}</td></tr>`;
    }).join("");
    const open = rows.filter((d) => d.breaker !== "closed").length;
    $("#deployments-hint").textContent = `${rows.length} deployment${rows.length === 1 ? "" : "s"} · ${open} breaker${open === 1 ? "" : "s"} not closed`;
  }

  // `/admin/whatif?to=every` for the window on screen: each model's cheapest exit.
  function exitTable(report) {
    const tbody = $("#exit tbody");
    const rows = report ? report.rows.filter((r) => r.in_total) : [];
    if (!rows.length) { tbody.innerHTML = `<tr><td colspan="7" class="empty">No priced traffic to reprice in this window</td></tr>`; return; }
    const usd = (n) => fmtUsd(n / 1e9);
    const signed = (n) => (n > 0 ? "+" : n < 0 ? "−" : "") + fmtUsd(Math.abs(n) / 1e9);
    tbody.innerHTML = rows.map((r) => `<tr data-model="${esc(r.model)}" data-to="${esc(r.to)}" data-requests="${r.requests}" data-current="${r.current_nanos}" data-whatif="${r.whatif_nanos}" data-difference="${r.difference_nanos}">
        <td><b>${esc(r.model)}</b></td><td class="dim">${esc(r.to)} · ${esc(r.to_cloud)}</td>
        <td class="num">${esc(fmtInt(r.requests))}</td><td class="num">${esc(usd(r.current_nanos))}</td>
        <td class="num">${esc(usd(r.whatif_nanos))}</td><td class="num">${esc(usd(r.commitment_credit_nanos))}</td>
        <td class="num ${r.difference_nanos > 0 ? "hot" : ""}">${esc(signed(r.difference_nanos))}</td></tr>`).join("");
    const t = report.total;
    $("#exit-hint").textContent = `all traffic in the window · moving every model to its cheapest deployment: ${signed(t.difference_nanos)}`;
  }

  // `/admin/slo`: the last hour, day and 30 days ending with the window on screen.
  function sloTable(report) {
    const tbody = $("#slo tbody");
    if (!report || !report.rows.length) { tbody.innerHTML = `<tr><td colspan="8" class="empty">No upstream attempts in the last 30 days</td></tr>`; return; }
    const bound = (b) => b.at_most !== undefined ? `≤${fmtInt(b.at_most)} ms` : `>${fmtInt(b.above)} ms`;
    const pair = (p) => p ? `${bound(p.p50)} / ${bound(p.p95)}` : "–";
    tbody.innerHTML = report.rows.map((r) => {
      const burn = r.error_budget_burn;
      const hot = burn !== null && burn > 1 ? "hot" : burn !== null && burn > 0 ? "warm" : "";
      return `<tr data-deployment="${esc(r.deployment)}" data-window="${esc(r.window)}" data-attempts="${r.attempts}" data-failures="${r.failures}" data-availability="${r.availability === null ? "" : r.availability}" data-burn="${burn === null ? "" : burn}">
        <td><b>${esc(r.deployment)}</b></td><td class="dim">${esc(r.window)}</td>
        <td class="num">${esc(fmtInt(r.attempts))}</td>
        <td class="num ${r.failures ? "warm" : ""}">${esc(fmtInt(r.failures))}</td>
        <td class="num">${r.availability === null ? "–" : esc((r.availability * 100).toFixed(3) + "%")}</td>
        <td class="num">${esc(pair(r.latency_ms))}</td>
        <td class="num">${esc(pair(r.ttft_ms))}</td>
        <td class="num ${hot}">${burn === null ? "–" : esc(burn.toFixed(2))}</td></tr>`;
    }).join("");
    $("#slo-hint").textContent = `ending ${report.until} · objective ${(report.objective * 100).toFixed(1)}% · burn 1 = error budget spent exactly`;
  }

  function budgets(el, rows) {
    const team = state.filters.team;
    const shown = rows.filter((b) => !team || b.team === team)
      .sort((a, b) => (b.spent_usd + b.reserved_usd) / (b.limit_usd || 1) - (a.spent_usd + a.reserved_usd) / (a.limit_usd || 1));
    if (!shown.length) {
      el.innerHTML = `<div class="empty">No budgets${team ? " for team " + esc(team) : ""}. Create one with <code>POST /admin/teams</code> or <code>switchyard keys</code>.</div>`;
      return;
    }
    el.innerHTML = shown.slice(0, 8).map((b) => {
      const limit = b.limit_usd || 0;
      const used = limit > 0 ? b.spent_usd / limit : 0;
      const resv = limit > 0 ? b.reserved_usd / limit : 0;
      const cls = used >= 1 ? "over" : used >= 0.8 ? "warn" : "";
      const who = b.scope === "team" ? b.team : b.team + " / " + (b.key || b.key_id);
      const resets = new Date(b.resets_at);
      const hours = Math.max(0, (resets.getTime() - Date.now()) / 3600000);
      const left = hours >= 48 ? Math.round(hours / 24) + " days" : hours >= 1 ? Math.round(hours) + " h" : Math.round(hours * 60) + " min";
      return `<div class="budget ${cls}" data-team="${esc(b.team)}" data-scope="${esc(b.scope)}" data-spent="${b.spent_usd}" data-limit="${limit}">
        <div class="top"><span class="who">${esc(who)}<small>${esc(b.period)} · ${esc(b.mode)}</small></span>
        <span class="amt">${esc(fmtUsd(b.spent_usd))} of ${esc(fmtUsd(limit))} · ${esc(fmtPct(used))}</span></div>
        <div class="meter"><span class="spent" style="width:${Math.min(100, used * 100).toFixed(2)}%"></span><span class="reserved" style="left:${Math.min(100, used * 100).toFixed(2)}%;width:${Math.min(100 - Math.min(100, used * 100), resv * 100).toFixed(2)}%"></span></div>
        <div class="foot">${b.reserved_usd > 0 ? esc(fmtUsd(b.reserved_usd)) + " reserved in flight · " : ""}${b.expired_holds > 0 ? esc(String(b.expired_holds)) + " never settled (released at expiry) · " : ""}resets in ${esc(left)}</div></div>`;
    }).join("") + (shown.length > 8 ? `<div class="hint">+ ${shown.length - 8} more</div>` : "");
    $("#budget-hint").textContent = `${shown.length} budget${shown.length === 1 ? "" : "s"}, current periods`;
  }

  function stack(label, clouds, key) {
    const total = clouds.reduce((s, c) => s + c[key], 0);
    const segs = clouds.filter((c) => c[key] > 0).map((c) =>
      `<span class="seg" data-cloud="${esc(c.cloud)}" style="width:${(c[key] * 100).toFixed(3)}%;background:${colorFor("cloud", c.cloud)}" title="${esc(c.cloud + ": " + fmtPct(c[key]))}">${c[key] >= 0.2 ? esc(c.cloud + " " + fmtPct(c[key])) : ""}</span>`).join("");
    return `<div class="conc-label"><span>${esc(label)}</span><span>${total > 0 ? "" : "no traffic"}</span></div><div class="stack">${segs}</div>`;
  }

  // `risk` is /admin/concentration for the same window (all traffic, filters aside): the
  // Herfindahl index over clouds, overall and per model.
  function concentration(el, c, risk) {
    const hhiOf = {};
    if (risk) for (const m of risk.models) hhiOf[m.model] = m.hhi;
    const score = risk && risk.overall_hhi !== null
      ? `<div class="hhi" data-testid="hhi" data-value="${risk.overall_hhi}" title="${esc(risk.formula)}">Herfindahl index over clouds <strong>${risk.overall_hhi.toFixed(2)}</strong><span>${risk.overall_basis === "spend" ? "spend" : "request"} shares, all traffic · 1 = one cloud, 1/n = even over n${risk.biggest_dependency ? ` · biggest dependency: ${esc(risk.biggest_dependency.kind)} ${esc(risk.biggest_dependency.name)}` : ""}</span></div>`
      : `<div class="hhi" data-testid="hhi" data-value="">Herfindahl index over clouds <strong>–</strong><span>no routed traffic</span></div>`;
    // The drill of the biggest dependency: what losing it would do to the same window.
    const d = risk && risk.biggest_dependency_drill;
    const failedN = d ? Object.values(d.failed).reduce((a, b) => a + b, 0) : 0;
    const drill = d
      ? `<div class="drill" data-testid="drill" data-down="${esc(d.down)}" data-served="${d.served_share}">If ${esc(d.down)} went down: <strong>${esc(fmtPct(d.served_share))}</strong> of ${d.requests} requests still served, ${failedN} would fail, ${esc(fmtUsd(d.extra_cost_nanos / 1e9))} extra spend <span>(drill, offline)</span></div>`
      : "";
    const single = c.single_cloud_models;
    const banner = single.length
      ? `<div class="risk"><strong>${esc(fmtPct(c.single_cloud_cost_share))}</strong><span>of spend (${esc(fmtPct(c.single_cloud_request_share))} of requests) goes to ${single.length} model${single.length === 1 ? "" : "s"} with deployments on a single cloud.</span></div>`
      : `<div class="risk okay"><strong>0</strong><span>models depend on a single cloud: every model can move.</span></div>`;
    const legend = c.clouds.map((s) => `<span class="key" data-cloud="${esc(s.cloud)}"><i class="sw" style="background:${colorFor("cloud", s.cloud)}"></i>${esc(s.cloud)} · ${esc(fmtPct(s.request_share))} req · ${esc(fmtPct(s.cost_share))} spend · ${s.deployments} dep.</span>`).join("");
    const models = c.models.slice().sort((a, b) => Number(b.single_cloud) - Number(a.single_cloud) || Number(b.no_escape) - Number(a.no_escape) || b.requests - a.requests);
    const rows = models.map((m) => {
      const chips = m.clouds.map((cl) => `<span class="chip"><i style="background:${colorFor("cloud", cl)}"></i>${esc(cl)}</span>`).join("");
      const status = !m.single_cloud
        ? `<span class="chip ok">multi-cloud</span>`
        : m.no_escape
          ? `<span class="chip bad">single cloud, no escape</span>`
          : `<span class="chip warn">single cloud · falls back to ${esc(m.fallback_clouds.join(", "))}</span>`;
      const h = hhiOf[m.model];
      const hhiText = h === undefined || h === null ? "" : ` · HHI ${h.toFixed(2)}`;
      return `<div class="model-row" data-model="${esc(m.model)}" data-single="${m.single_cloud}" data-hhi="${h === undefined || h === null ? "" : h}">
        <span class="name">${esc(m.model)}<small>${esc(fmtPct(m.request_share))} of requests · ${esc(fmtUsd(m.cost_usd))} · ${m.deployments.length} deployment${m.deployments.length === 1 ? "" : "s"}${hhiText}</small></span>
        <span class="chips">${chips}${status}</span></div>`;
    }).join("");
    el.innerHTML = score + drill + banner + stack("Traffic by cloud", c.clouds, "request_share") + stack("Spend by cloud", c.clouds, "cost_share") +
      `<div class="stack-legend">${legend}</div><div class="models">${rows}</div>`;
  }

  function historyChart(el, report) {
    const rows = report.rows.map((r) => ({
      name: r.group, cost_nanos: r.cost_nanos, cost_usd: r.cost_nanos / 1e9, requests: r.requests,
      cost_share: Number(report.total.cost_nanos) > 0 ? r.cost_nanos / report.total.cost_nanos : 0,
    }));
    barList(el, report.by === "key" ? "key" : report.by, rows, 12);
    $$(".bar-row .v small", el).forEach((s, i) => {
      const r = report.rows[i];
      if (r) s.textContent = `${fmtInt(r.requests)} req · ${fmtCompact(r.input_tokens + r.output_tokens)} tokens`;
    });
    if (!rows.length) el.innerHTML = `<div class="empty">No spend recorded this month</div>`;
  }

  // ---------- KPIs ----------
  function kpi(id, value, raw, sub, alert) {
    const el = $(`[data-testid="${id}"]`);
    $(".kpi-value", el).textContent = value;
    el.dataset.value = raw;
    $(".kpi-sub", el).textContent = sub || "";
    el.classList.toggle("alert", !!alert);
  }
  function kpis(o) {
    const t = o.totals, secs = o.window.seconds;
    kpi("kpi-requests", fmtInt(t.requests), t.requests, `${(t.requests / secs).toFixed(2)} req/s · ${fmtInt(t.streams)} streamed`);
    const perHour = (t.cost_usd / secs) * 3600;
    kpi("kpi-spend", fmtUsd(t.cost_usd), t.cost_nanos, `≈ ${fmtUsd(perHour)}/hour at this rate` + (t.unpriced_requests ? ` · ${t.unpriced_requests} unpriced` : ""));
    kpi("kpi-tokens", fmtCompact(t.tokens), t.tokens, `${fmtCompact(t.input_tokens)} in · ${fmtCompact(t.output_tokens)} out`);
    const top = t.errors_by_kind[0];
    kpi("kpi-errors", fmtInt(t.errors), t.errors, `${fmtPct(t.error_rate)} of requests` + (top ? ` · ${top.kind}` : ""), t.errors > 0);
    kpi("kpi-failovers", fmtInt(t.failovers), t.failovers, `${fmtPct(t.requests ? t.failovers / t.requests : 0)} of requests`);
    $('[data-testid="kpi-failovers"]').title = `${fmtInt(t.attempts)} upstream attempts for ${fmtInt(t.requests)} requests`;
    kpi("kpi-latency", fmtPairShort(t.latency_ms), t.latency_ms ? t.latency_ms.p95 : "", t.ttft_ms ? `TTFT ${fmtPairShort(t.ttft_ms)}` : "no streams");
  }

  // ---------- filters ----------
  const ALL_LABEL = { cloud: "All clouds", provider: "All providers", region: "All regions", model: "All models", team: "All teams" };
  function fillSelect(sel, values, current) {
    const f = sel.dataset.filter;
    const all = values.slice();
    if (current && !all.includes(current)) all.push(current);
    const html = `<option value="">${ALL_LABEL[f]}</option>` + all.map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join("");
    if (sel.dataset.html !== html) { sel.innerHTML = html; sel.dataset.html = html; }
    sel.value = current || "";
    sel.classList.toggle("active", !!current);
  }
  function renderFilters() {
    const o = state.options || { clouds: [], providers: [], regions: [], models: [], teams: [] };
    for (const f of FILTERS) fillSelect($("#f-" + f), o[f + "s"] || [], state.filters[f]);
    $$("#windows button").forEach((b) => b.classList.toggle("on", b.dataset.window === state.window));
    $$("#history-by button").forEach((b) => b.classList.toggle("on", b.dataset.by === state.historyBy));
    $("#clear-filters").hidden = !FILTERS.some((f) => state.filters[f]);
  }

  // ---------- render ----------
  function render(o, budgetRows, spend, risk, slo, exit) {
    state.last = o;
    state.options = o.options;
    renderFilters();
    kpis(o);
    volumeChart($("#chart-volume"), o);
    spendChart($("#chart-spend"), o);
    donut($("#chart-cloud"), o.breakdowns.cloud, o.totals.cost_usd);
    barList($("#chart-model"), "model", o.breakdowns.model);
    barList($("#chart-team"), "team", o.breakdowns.team);
    barList($("#chart-provider"), "provider", o.breakdowns.provider);
    barList($("#chart-region"), "region", o.breakdowns.region);
    latencyChart($("#chart-latency"), o.deployments);
    deploymentsTable(o);
    concentration($("#concentration"), o.concentration, risk);
    sloTable(slo);
    exitTable(exit);
    if (budgetRows) budgets($("#budgets"), budgetRows);
    if (spend) historyChart($("#history"), spend);
    const w = o.window;
    $("#window-text").textContent = `Window ${w.since} → ${w.until} (${fmtInt(w.seconds / 60)} min, ${w.bucket_seconds} s buckets)` + (o.truncated ? " · only the newest 200,000 requests are counted" : "");
    state.generation += 1;
    document.body.dataset.generation = String(state.generation);
    document.body.dataset.until = String(w.until_ms);
    document.body.dataset.query = overviewQuery();
    document.body.dataset.state = "ready";
  }

  function setStatus(text, cls) {
    $("#status-text").textContent = text;
    const dot = $("#live-dot");
    dot.classList.toggle("paused", cls === "paused");
    dot.classList.toggle("down", cls === "down");
  }

  async function refresh() {
    clearTimeout(state.timer);
    if (state.inflight) return;
    state.inflight = true;
    const query = overviewQuery();
    try {
      const [o, b, s] = await Promise.all([
        api("/admin/overview?" + query),
        api("/admin/budgets").catch((e) => { if (e instanceof AuthError) throw e; return null; }),
        api(`/admin/spend?by=${encodeURIComponent(state.historyBy)}&since=${monthStart()}`).catch((e) => { if (e instanceof AuthError) throw e; return null; }),
      ]);
      // The overview decides the window, so the concentration score and the SLOs follow it.
      const w = `since=${encodeURIComponent(o.window.since)}&until=${encodeURIComponent(o.window.until)}`;
      const soft = (e) => { if (e instanceof AuthError) throw e; return null; };
      const [risk, slo, exit] = await Promise.all([
        api("/admin/concentration?" + w).catch(soft),
        api(`/admin/slo?until=${encodeURIComponent(o.window.until)}`).catch(soft),
        api(`/admin/whatif?to=every&${w}`).catch(soft),
      ]);
      // A filter changed while this was in flight: draw the newer one instead.
      if (query !== overviewQuery()) { state.inflight = false; return refresh(); }
      render(o, b && b.data, s, risk, slo, exit);
      $("#error-banner").hidden = true;
      if (state.until) setStatus(`Fixed window ending ${fmtTime(Number(state.until), true)}`, "paused");
      else setStatus(state.paused ? `Paused · ${fmtTime(Date.now(), true)}` : `Live · updated ${fmtTime(Date.now(), true)}`, state.paused ? "paused" : "");
    } catch (e) {
      if (e instanceof AuthError) { state.inflight = false; signOut(e.message); return; }
      $("#error-banner").textContent = "Could not refresh: " + e.message;
      $("#error-banner").hidden = false;
      setStatus("Connection problem, retrying", "down");
    }
    state.inflight = false;
    if (!state.paused) state.timer = setTimeout(refresh, REFRESH_MS);
  }

  // ---------- sign in / out ----------
  function showApp() {
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#status").hidden = false;
    renderFilters();
    refresh();
  }
  function signOut(message) {
    clearTimeout(state.timer);
    sessionStorage.removeItem(TOKEN_KEY);
    state.token = null;
    $("#app").hidden = true;
    $("#status").hidden = true;
    $("#login").hidden = false;
    document.body.dataset.state = "login";
    const err = $("#login-error");
    err.textContent = message || "";
    err.hidden = !message;
    $("#token").value = "";
    $("#token").focus();
  }

  function init() {
    readHash();
    window.addEventListener("hashchange", () => { readHash(); renderFilters(); if (state.token) refresh(); });
    $("#login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const token = $("#token").value.trim();
      if (!token) return;
      state.token = token;
      try {
        await api("/admin/budgets");
      } catch (e) {
        state.token = null;
        $("#login-error").textContent = e instanceof AuthError ? "That admin token was not accepted." : e.message;
        $("#login-error").hidden = false;
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      $("#login-error").hidden = true;
      showApp();
    });
    $("#signout").addEventListener("click", () => signOut(""));
    $("#pause").addEventListener("click", () => {
      state.paused = !state.paused;
      $("#pause").textContent = state.paused ? "Resume" : "Pause";
      document.body.dataset.paused = String(state.paused);
      if (state.paused) { clearTimeout(state.timer); setStatus("Paused", "paused"); } else refresh();
    });
    $$("#windows button").forEach((b) => b.addEventListener("click", () => {
      state.window = b.dataset.window; writeHash(); renderFilters(); refresh();
    }));
    $$("#history-by button").forEach((b) => b.addEventListener("click", () => {
      state.historyBy = b.dataset.by; writeHash(); renderFilters(); refresh();
    }));
    for (const f of FILTERS) {
      $("#f-" + f).addEventListener("change", (ev) => {
        if (ev.target.value) state.filters[f] = ev.target.value; else delete state.filters[f];
        writeHash(); renderFilters(); refresh();
      });
    }
    $("#clear-filters").addEventListener("click", () => { state.filters = {}; writeHash(); renderFilters(); refresh(); });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (state.last) { volumeChart($("#chart-volume"), state.last); spendChart($("#chart-spend"), state.last); } }, 150);
    });
    if (state.token) showApp(); else signOut("");
  }

  window.switchyard = { fmtInt, fmtUsd, fmtCompact, fmtPct, fmtMs, fmtPair, fmtPairShort, state, refresh };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
