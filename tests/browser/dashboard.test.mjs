// Browser test of the dashboard: starts `switchyard demo --traffic`, adds two teams with
// budgets and a failing provider so every panel has something to show, opens the dashboard in
// Debian's chromium (driven by playwright-core, never a downloaded browser), signs in, checks
// that the charts render non-zero data equal to what /admin/overview returns for the same
// window, switches filters and checks the view follows, and saves screenshots to
// test-artifacts/. Prints `N passed, M failed` last. Run through tests/browser/run.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const BIN = process.env.SWITCHYARD_BIN || join(repo, "target", "debug", "switchyard");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const ARTIFACTS = join(repo, "test-artifacts");
const ADMIN_TOKEN = "switchyard-demo-admin-token";
const DEADLINE = Date.now() + 240_000; // the whole test, bounded

let passed = 0;
let failed = 0;
function check(name, ok, detail) {
  if (ok) {
    passed += 1;
    console.log(`ok   - ${name}`);
  } else {
    failed += 1;
    console.log(`FAIL - ${name}${detail === undefined ? "" : ": " + (typeof detail === "string" ? detail : JSON.stringify(detail))}`);
  }
  return ok;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, timeoutMs = 30_000, everyMs = 250) {
  const end = Math.min(Date.now() + timeoutMs, DEADLINE);
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}` + (last instanceof Error ? `: ${last.message}` : ""));
}

// ---------- the demo ----------
function startDemo(dir) {
  const child = spawn(BIN, ["demo", "--traffic", "--rps", "6", "--listen", "127.0.0.1:0", "--config-out", join(dir, "switchyard.toml")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || "warn" },
  });
  const info = { child, gateway: null, sims: {}, stderr: [] };
  createInterface({ input: child.stderr }).on("line", (l) => {
    info.stderr.push(l);
    if (info.stderr.length > 200) info.stderr.shift();
  });
  const ready = new Promise((resolveReady, reject) => {
    child.once("exit", (code) => reject(new Error(`demo exited early with ${code}:\n${info.stderr.join("\n")}`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const gw = line.match(/gateway: (http:\/\/[0-9.:]+)\/v1/);
      if (gw) info.gateway = gw[1];
      const sim = line.match(/^\s+([a-z0-9-]+)\s+\S+\s+\S+\s+\(\w+\)\s+(http:\/\/[0-9.:]+)\s*$/);
      if (sim) info.sims[sim[1]] = sim[2];
      if (/^Stop it with/.test(line)) resolveReady(info);
    });
  });
  return { info, ready };
}

async function stopDemo(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const done = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
  if (!done) {
    child.kill("SIGKILL");
    await exited;
  }
}

// ---------- HTTP helpers ----------
async function admin(gw, path, init = {}) {
  const r = await fetch(gw + path, {
    ...init,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json", ...(init.headers || {}) },
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${init.method || "GET"} ${path}: ${r.status} ${text}`);
  return JSON.parse(text);
}
async function simFaults(url, faults) {
  const r = await fetch(url + "/_sim/faults", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(faults) });
  if (!r.ok) throw new Error(`sim faults ${url}: ${r.status} ${await r.text()}`);
}
async function chat(gw, key, model, stream) {
  const r = await fetch(gw + "/v1/chat/completions", {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ model, stream, messages: [{ role: "user", content: `Quarterly numbers for ${model}, please` }] }),
  });
  await r.arrayBuffer();
  return r.status;
}

// ---------- the page ----------
async function readPage(page) {
  return page.evaluate(() => {
    const kpi = (id) => {
      const el = document.querySelector(`[data-testid="${id}"]`);
      return { text: el.querySelector(".kpi-value").textContent, value: el.dataset.value };
    };
    const rows = (sel) => Array.from(document.querySelectorAll(sel)).map((e) => ({ ...e.dataset }));
    return {
      generation: Number(document.body.dataset.generation || 0),
      until: document.body.dataset.until,
      query: document.body.dataset.query,
      kpis: {
        requests: kpi("kpi-requests"), spend: kpi("kpi-spend"), tokens: kpi("kpi-tokens"),
        errors: kpi("kpi-errors"), failovers: kpi("kpi-failovers"), latency: kpi("kpi-latency"),
      },
      volume: rows("#chart-volume g[data-bucket]"),
      volumeRects: document.querySelectorAll("#chart-volume rect").length,
      spendPath: (document.querySelector("#chart-spend path.spend-line") || { getAttribute: () => "" }).getAttribute("d"),
      spendPoints: rows("#chart-spend circle[data-bucket]"),
      donut: rows("#chart-cloud path[data-name]"),
      byModel: rows("#chart-model .bar-row"),
      byTeam: rows("#chart-team .bar-row"),
      teamColors: Object.fromEntries([...document.querySelectorAll("#chart-team .bar-row")].map((r) => [r.dataset.name, r.querySelector(".fill").style.background])),
      byProvider: rows("#chart-provider .bar-row"),
      byRegion: rows("#chart-region .bar-row"),
      latency: rows("#chart-latency .lat-row"),
      deployments: rows("#deployments tbody tr[data-deployment]"),
      budgets: rows("#budgets .budget"),
      models: rows("#concentration .model-row"),
      slo: rows("#slo tbody tr[data-deployment]"),
      exit: rows("#exit tbody tr[data-model]"),
      hhi: (document.querySelector('#concentration [data-testid="hhi"]') || { dataset: {} }).dataset.value ?? null,
      drill: { ...((document.querySelector('#concentration [data-testid="drill"]') || { dataset: {} }).dataset) },
      stacks: document.querySelectorAll("#concentration .stack .seg").length,
      history: rows("#history .bar-row"),
    };
  });
}
async function waitRender(page, after, queryPart) {
  await page.waitForFunction(
    ([g, q]) => Number(document.body.dataset.generation || 0) > g && (!q || (document.body.dataset.query || "").includes(q)),
    [after, queryPart],
    { timeout: 20_000 },
  );
  return readPage(page);
}
const fmt = (page, name, v) => page.evaluate(([n, x]) => window.switchyard[n](x), [name, v]);
const byName = (rows, key = "name") => Object.fromEntries(rows.map((r) => [r[key], r]));

async function compare(page, shown, api, label) {
  const t = api.totals;
  check(`${label}: requests KPI shows the API's count (${t.requests})`,
    shown.kpis.requests.value === String(t.requests) && shown.kpis.requests.text === (await fmt(page, "fmtInt", t.requests)), shown.kpis.requests);
  check(`${label}: spend KPI shows the API's cost (${t.cost_nanos} nano-USD)`,
    shown.kpis.spend.value === String(t.cost_nanos) && shown.kpis.spend.text === (await fmt(page, "fmtUsd", t.cost_usd)), shown.kpis.spend);
  check(`${label}: tokens, errors and failovers KPIs match`,
    shown.kpis.tokens.value === String(t.tokens) && shown.kpis.errors.value === String(t.errors) && shown.kpis.failovers.value === String(t.failovers),
    { shown: shown.kpis, api: { tokens: t.tokens, errors: t.errors, failovers: t.failovers } });
  check(`${label}: latency KPI shows the API's p50 / p95`, shown.kpis.latency.text === (await fmt(page, "fmtPairShort", t.latency_ms)), shown.kpis.latency);
  const apiBuckets = Object.fromEntries(api.timeline.filter((b) => b.requests > 0).map((b) => [String(b.start_ms), b.requests]));
  const shownBuckets = Object.fromEntries(shown.volume.map((b) => [b.bucket, Number(b.requests)]));
  check(`${label}: volume chart has one bar per non-empty bucket with the API's counts (${Object.keys(apiBuckets).length} bars)`,
    shown.volumeRects > 0 && JSON.stringify(shownBuckets) === JSON.stringify(apiBuckets), { shownBuckets, apiBuckets });
  const apiCost = Object.fromEntries(api.timeline.filter((b) => b.cost_nanos > 0).map((b) => [String(b.start_ms), String(b.cost_nanos)]));
  const shownCost = Object.fromEntries(shown.spendPoints.map((p) => [p.bucket, p.cost]));
  check(`${label}: spend chart plots the API's cost per bucket`,
    (shown.spendPath || "").length > 10 && JSON.stringify(shownCost) === JSON.stringify(apiCost), { shownCost, apiCost });
  const donut = Object.fromEntries(shown.donut.map((d) => [d.name, d.value]));
  const apiClouds = Object.fromEntries(api.breakdowns.cloud.filter((g) => g.cost_nanos > 0).map((g) => [g.name, String(g.cost_nanos)]));
  check(`${label}: cloud donut has the API's spend per cloud`, JSON.stringify(donut) === JSON.stringify(apiClouds), { donut, apiClouds });
  for (const [dim, rows] of [["model", shown.byModel], ["team", shown.byTeam], ["provider", shown.byProvider], ["region", shown.byRegion]]) {
    const s = rows.map((r) => [r.name, r.value, r.requests]);
    const a = api.breakdowns[dim].slice(0, 8).map((g) => [g.name, String(g.cost_nanos), String(g.requests)]);
    check(`${label}: spend by ${dim} bars match the API`, s.length > 0 && JSON.stringify(s) === JSON.stringify(a), { shown: s, api: a });
  }
  const dep = byName(shown.deployments, "deployment");
  const mismatched = api.deployments.filter((d) => !dep[d.deployment] || dep[d.deployment].requests !== String(d.requests) || dep[d.deployment].failovers !== String(d.failovers) || dep[d.deployment].errors !== String(d.errors));
  check(`${label}: deployments table has the API's requests, errors and failovers per deployment`,
    shown.deployments.length === api.deployments.length && mismatched.length === 0, mismatched.map((d) => d.deployment));
  const lat = api.deployments.filter((d) => d.latency_ms || d.ttft_ms).map((d) => d.deployment);
  check(`${label}: latency chart has a row per deployment with latency data`,
    JSON.stringify(shown.latency.map((r) => r.deployment)) === JSON.stringify(lat), { shown: shown.latency.map((r) => r.deployment), api: lat });
}

// ---------- main ----------
async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "switchyard-browser-"));
  const demo = startDemo(dir);
  let browser = null;
  try {
    const info = await Promise.race([demo.ready, sleep(60_000).then(() => { throw new Error("demo did not start within 60 s"); })]);
    const gw = info.gateway;
    check("the demo prints the gateway and its simulated fleet", !!gw && Object.keys(info.sims).length >= 4, info.sims);

    // Shape the fleet: latencies that differ per provider, and one provider down so requests
    // fail over and its breaker opens.
    await simFaults(info.sims["openai-us"], { latency_ms: 35, ttft_ms: 20 });
    await simFaults(info.sims["coreweave-vllm"], { latency_ms: 90, ttft_ms: 60 });
    await simFaults(info.sims["azure-swedencentral"], { latency_ms: 60 });
    await simFaults(info.sims["azure-eastus"], { fail_always: true, fail_status: 503 });

    // Two teams with budgets, a key each, and some traffic of their own.
    await admin(gw, "/admin/teams", { method: "POST", body: JSON.stringify({ name: "search", budgets: [{ period: "day", amount_usd: 0.002, mode: "alert" }] }) });
    await admin(gw, "/admin/teams", { method: "POST", body: JSON.stringify({ name: "finance", budgets: [{ period: "month", amount_usd: 25 }] }) });
    const search = await admin(gw, "/admin/keys", { method: "POST", body: JSON.stringify({ team: "search", name: "indexer" }) });
    const finance = await admin(gw, "/admin/keys", { method: "POST", body: JSON.stringify({ team: "finance", name: "reports", budgets: [{ period: "day", amount_usd: 1 }] }) });
    const statuses = [];
    for (let i = 0; i < 12; i++) {
      statuses.push(await chat(gw, search.secret, ["gpt-4o", "fast", "gpt-4o-mini"][i % 3], i % 2 === 0));
      statuses.push(await chat(gw, finance.secret, ["gpt-4o", "llama-3.1-70b"][i % 2], i % 3 === 0));
    }
    check("managed-key traffic of two teams is served", statuses.every((s) => s === 200), statuses);

    // Wait for the ledger to show traffic with failovers and an open breaker.
    const live = await until("traffic with failovers in the ledger", async () => {
      const o = await admin(gw, "/admin/overview?window=15m");
      return o.totals.requests >= 40 && o.totals.failovers >= 3 && o.deployments.some((d) => d.breaker !== "closed") ? o : null;
    }, 60_000, 500);
    check("the admin API sees traffic, failovers and an open breaker", live.totals.requests >= 40 && live.totals.failovers >= 3);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    });
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    const pageErrors = [];
    const offsite = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => { if (m.type() === "error") pageErrors.push(m.text()); });
    page.on("request", (r) => { if (!r.url().startsWith(gw) && !r.url().startsWith("data:")) offsite.push(r.url()); });

    // Sign in: a wrong token is refused, the right one opens the dashboard.
    await page.goto(gw + "/admin/dashboard", { waitUntil: "domcontentloaded" });
    await page.waitForSelector("#login-form", { state: "visible", timeout: 10_000 });
    check("the dashboard asks for the admin token", await page.isVisible("#token"));
    await page.fill("#token", "not-the-admin-token");
    await page.click("#login-submit");
    await page.waitForSelector("#login-error", { state: "visible", timeout: 10_000 });
    check("a wrong admin token is refused", (await page.textContent("#login-error")).includes("not accepted"));
    await page.fill("#token", ADMIN_TOKEN);
    await page.click("#login-submit");
    await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 20_000 });
    pageErrors.length = 0; // the refused token's 401 above was expected
    check("the token is kept in sessionStorage only", (await page.evaluate(() => [sessionStorage.getItem("switchyard.adminToken"), localStorage.length])).join() === `${ADMIN_TOKEN},0`);
    let shown = await readPage(page);
    check("live view: charts render non-zero data", Number(shown.kpis.requests.value) > 0 && shown.volumeRects > 0 && shown.donut.length > 0 && shown.byModel.length > 0 && shown.latency.length > 0,
      { requests: shown.kpis.requests, rects: shown.volumeRects });
    const g0 = shown.generation;
    shown = await waitRender(page, g0);
    check("live view refreshes by itself", shown.generation > g0);

    // A settled window (ending 3 s ago, so every record in it is written): the page and the
    // admin API must agree on every number.
    const fixed = String(Date.now() - 3000);
    await page.evaluate((u) => { location.hash = `window=15m&until=${u}`; }, fixed);
    shown = await waitRender(page, shown.generation, `until=${fixed}`);
    const api = await admin(gw, `/admin/overview?window=15m&until=${fixed}`);
    check("fixed window: the page shows the window the API was asked for", shown.until === String(api.window.until_ms), { page: shown.until, api: api.window.until_ms });
    await compare(page, shown, api, "all traffic");
    const allTeamColors = shown.teamColors;
    check("fixed window: failovers and errors are visible", api.totals.failovers > 0 && Number(shown.kpis.failovers.value) === api.totals.failovers);
    const open = shown.deployments.filter((d) => d.breaker !== "closed").map((d) => d.deployment);
    check("the failing deployment's breaker is shown open", open.some((d) => d.includes("azure-eastus")), open);
    const tripped = shown.deployments.filter((d) => d.deployment.includes("azure-eastus") && d.breaker !== "closed");
    check("its breaker shows why it opened and how often",
      tripped.length > 0 && tripped.every((d) => Number(d.trips) >= 1 && d.breakerDetail.includes("opened ") && d.breakerDetail !== "traffic flows"),
      tripped.map((d) => ({ deployment: d.deployment, trips: d.trips, detail: d.breakerDetail })));
    const teams = shown.byTeam.map((t) => t.name);
    check("spend by team shows both teams and the demo key's (none)", ["search", "finance", "(none)"].every((t) => teams.includes(t)), teams);
    const budgetsApi = (await admin(gw, "/admin/budgets")).data;
    const pageBudgets = shown.budgets.map((b) => `${b.team}/${b.scope}/${b.limit}`).sort();
    const apiBudgets = budgetsApi.map((b) => `${b.team}/${b.scope}/${b.limit_usd}`).sort();
    check("budget use shows every budget of /admin/budgets", JSON.stringify(pageBudgets) === JSON.stringify(apiBudgets), { pageBudgets, apiBudgets });
    const searchBudget = shown.budgets.find((b) => b.team === "search");
    const searchApi = budgetsApi.find((b) => b.team === "search" && b.scope === "team");
    check("the search team's budget shows its spend", !!searchBudget && Number(searchBudget.spent) > 0 && Number(searchBudget.spent) === searchApi.spent_usd, { searchBudget, searchApi });
    const models = byName(shown.models, "model");
    check("concentration flags single-cloud models", models["llama-3.1-70b"]?.single === "true" && models["gpt-4o"]?.single === "false" && shown.stacks > 0, models);
    const conc = await admin(gw, `/admin/concentration?since=${encodeURIComponent(api.window.since)}&until=${encodeURIComponent(api.window.until)}`);
    const modelScores = conc.models.filter((m) => m.hhi !== null && models[m.model]);
    check("concentration shows the Herfindahl index of /admin/concentration, overall and per model",
      conc.overall_hhi !== null && conc.overall_hhi > 0 && conc.overall_hhi <= 1 && Number(shown.hhi) === conc.overall_hhi &&
      modelScores.length > 0 && modelScores.every((m) => Number(models[m.model].hhi) === m.hhi),
      { shown: shown.hhi, api: conc.overall_hhi, models: modelScores.map((m) => [m.model, m.hhi, models[m.model].hhi]) });
    const drill = conc.biggest_dependency_drill;
    check("concentration shows the drill of the biggest dependency from /admin/concentration",
      !!drill && drill.down === shown.drill.down && Number(shown.drill.served) === drill.served_share && drill.requests > 0,
      { shown: shown.drill, api: drill });
    const slo = await admin(gw, `/admin/slo?until=${encodeURIComponent(api.window.until)}`);
    const pageSlo = shown.slo.map((r) => `${r.deployment}/${r.window}/${r.attempts}/${r.failures}/${r.availability}`).sort();
    const apiSlo = slo.rows.map((r) => `${r.deployment}/${r.window}/${r.attempts}/${r.failures}/${r.availability === null ? "" : r.availability}`).sort();
    check("provider SLOs show every row of /admin/slo, with attempts and failures",
      apiSlo.length > 0 && JSON.stringify(pageSlo) === JSON.stringify(apiSlo) && slo.rows.some((r) => r.failures > 0),
      { pageSlo, apiSlo });
    const exit = await admin(gw, `/admin/whatif?to=every&since=${encodeURIComponent(api.window.since)}&until=${encodeURIComponent(api.window.until)}`);
    const pageExit = shown.exit.map((r) => `${r.model}/${r.to}/${r.requests}/${r.current}/${r.whatif}/${r.difference}`).sort();
    const apiExit = exit.rows.filter((r) => r.in_total).map((r) => `${r.model}/${r.to}/${r.requests}/${r.current_nanos}/${r.whatif_nanos}/${r.difference_nanos}`).sort();
    check("exit cost shows each model's cheapest deployment from /admin/whatif",
      apiExit.length > 0 && JSON.stringify(pageExit) === JSON.stringify(apiExit), { pageExit, apiExit });
    check("spend this month lists groups from /admin/spend", shown.history.length > 0);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-fixed.png"), fullPage: true });

    // Filter by cloud: everything narrows to that cloud, and still equals the API.
    await page.selectOption("#f-cloud", "coreweave");
    shown = await waitRender(page, shown.generation, "cloud=coreweave");
    const apiCw = await admin(gw, `/admin/overview?window=15m&until=${fixed}&cloud=coreweave`);
    await compare(page, shown, apiCw, "cloud=coreweave");
    const both = Object.keys(shown.teamColors).filter((t) => t in allTeamColors);
    check("team colours stay the same when a filter hides some teams",
      both.length > 0 && both.every((t) => shown.teamColors[t] === allTeamColors[t]),
      { filtered: shown.teamColors, all: allTeamColors });
    check("cloud filter: fewer requests than unfiltered, all on coreweave",
      apiCw.totals.requests > 0 && apiCw.totals.requests < api.totals.requests && shown.donut.length === 1 && shown.donut[0].name === "coreweave" &&
      shown.deployments.every((d) => apiCw.deployments.find((x) => x.deployment === d.deployment)?.cloud === "coreweave"),
      { filtered: apiCw.totals.requests, all: api.totals.requests, donut: shown.donut.map((d) => d.name) });
    check("cloud filter: the select shows the choice and the URL keeps it",
      (await page.inputValue("#f-cloud")) === "coreweave" && (await page.evaluate(() => location.hash)).includes("cloud=coreweave"));

    // Switch to a team filter: budgets narrow to that team too.
    await page.selectOption("#f-cloud", "");
    await page.selectOption("#f-team", "finance");
    shown = await waitRender(page, shown.generation, "team=finance");
    const apiFin = await admin(gw, `/admin/overview?window=15m&until=${fixed}&team=finance`);
    check("team filter: requests KPI equals the API's for team finance",
      shown.kpis.requests.value === String(apiFin.totals.requests) && apiFin.totals.requests === 12 && !shown.query.includes("cloud="),
      { shown: shown.kpis.requests, api: apiFin.totals.requests });
    check("team filter: spend by team shows only finance, budgets only finance's",
      shown.byTeam.length === 1 && shown.byTeam[0].name === "finance" && shown.budgets.length > 0 && shown.budgets.every((b) => b.team === "finance"),
      { teams: shown.byTeam.map((t) => t.name), budgets: shown.budgets.map((b) => b.team) });

    // Back to the live, unfiltered view for the screenshot (5 minutes: a young demo's traffic
    // fills more of it).
    await page.evaluate(() => { location.hash = "window=5m"; });
    shown = await waitRender(page, shown.generation, "window=5m");
    shown = await waitRender(page, shown.generation);
    check("back to live: the page follows the clock again", !shown.query.includes("until="));
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
    check("screenshot saved to test-artifacts/dashboard.png", true);
    check("no script errors on the page", pageErrors.length === 0, pageErrors);
    check("the page made no request outside the gateway", offsite.length === 0, offsite);
  } catch (e) {
    check("the browser test ran to the end", false, e && e.stack ? e.stack : String(e));
    if (demo.info.stderr.length) console.log("demo stderr (last lines):\n" + demo.info.stderr.slice(-30).join("\n"));
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopDemo(demo.info.child);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
