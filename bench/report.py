#!/usr/bin/env python3
"""Turns one bench/run results directory into the markdown tables of BENCHMARKS.md.

Usage: bench/report.py bench/results/latest   (or --line CASE.json for one progress line)
"""

import json
import sys
from pathlib import Path

MODES = {"chat": "non-streaming chat (latency = whole answer)", "stream": "streaming chat (latency = time to first byte)"}


def load(out: Path):
    """Every case's runs; each case is represented by its median run by throughput, which
    carries the spread of all its runs as `rps_all`."""
    reps = {}
    for f in sorted(out.glob("*-c*-*-r*.json")):
        r = json.loads(f.read_text())
        reps.setdefault((r["mode"], r["concurrency"], r["target"]), []).append(r)
    runs = {}
    for key, rs in reps.items():
        rs.sort(key=lambda r: r["rps"])
        median = dict(rs[(len(rs) - 1) // 2])
        median["rps_all"] = [r["rps"] for r in rs]
        median["noisy_runs"] = sum(1 for r in rs if r.get("noisy"))
        runs[key] = median
    return runs


def annotate(src, dst, fields):
    """Adds bench/run's fields to a loadgen result; prints 1 if the run was disturbed, else 0."""
    r = json.loads(Path(src).read_text())
    for f in fields:
        k, v = f.split("=", 1)
        r[k] = float(v) if "." in v else int(v) if v.lstrip("-").isdigit() else v
    r["idle_rss_kb"] = r.get("idle_rss_kb") or None
    others = (r.get("machine") or {}).get("others_cores") or 0
    r["noisy"] = bool(r.get("rustc_running_after")) or others > float(r.get("max_others", 0.25))
    Path(dst).write_text(json.dumps(r, indent=1))
    print(1 if r["noisy"] else 0)


def lat(r, p):
    key = "ttfb_us" if r["mode"] == "stream" else "total_us"
    return (r.get(key) or {}).get(p)


def proxy(r, field):
    return ((r.get("watched") or {}).get("proxy") or {}).get(field)


def watched(r, name, field):
    return ((r.get("watched") or {}).get(name) or {}).get(field)


def cpu_per_req(r):
    """CPU µs per request of the proxy; '≈' marks values from fewer than 50 clock ticks."""
    if r is None:
        return "–"
    v, ticks = proxy(r, "cpu_us_per_request"), proxy(r, "cpu_ticks")
    if v is None:
        return "–"
    return f"{'≈' if (ticks or 0) < 50 else ''}{v:,.1f}"


def capacity(r):
    """Requests per second one core could serve at this CPU cost per request."""
    v = proxy(r, "cpu_us_per_request") if r else None
    return "–" if not v else f"{1e6 / v:,.0f}"


def pct(x):
    return "–" if x is None else f"{x * 100:.0f}%"


def fmt_us(x):
    return "–" if x is None else f"{x:,}"


def fmt_added(x, base):
    if x is None or base is None:
        return "–"
    return f"{x - base:+,}"


def ratio(a, b):
    if not a or not b:
        return "–"
    return f"{a / b:.2f}"


def mb(kb):
    return "–" if not kb else f"{kb / 1024:.1f}"


def line(path):
    """One progress line for a single case's result file."""
    r = json.loads(Path(path).read_text())
    m = r.get("machine") or {}
    print(f"[bench] {r['mode']:6} c={r['concurrency']:<3} {r['target']:8} rps={r['rps']:>9.1f} "
          f"p50={lat(r, 'p50')}us p99={lat(r, 'p99')}us errors={r['errors']} {r['error_kinds'] or ''}"
          f"(others {m.get('others_cores')} cores, steal {m.get('steal_cores')}{', NOISY' if r.get('noisy') else ''})")


def profile(meta):
    """The gateway's config profile; runs from before profiles existed were pass-through only."""
    return meta.get("profile") or "passthrough"


def usd(x):
    return "–" if x is None else f"{float(x):,.6f}"


def governance(out: Path, meta, runs):
    """features-on: what the gateway's admin API said about the budgets at the end of each
    gateway run, and what the SQLite ledger holds for the managed key afterwards."""
    key_id = meta.get("managed_key_id")
    gdir = out / "governance"
    if profile(meta) != "features-on" or not key_id or not gdir.is_dir():
        return
    checks = []
    print(f"### Governance (profile `features-on`, managed key `{key_id}`)")
    print()
    print("| mode | conc | requests measured | key budget spent USD | team budget spent USD | reserved USD | key budget USD |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    spent_everywhere = True
    for (mode, c, t), r in sorted(runs.items()):
        if t != "gateway":
            continue
        f = gdir / f"{mode}-c{c}-r{r.get('rep', 1)}-a{r.get('attempt', 1)}.budgets.json"
        rows = json.loads(f.read_text()).get("data", []) if f.exists() else []
        key = next((b for b in rows if b.get("key_id") == key_id), None)
        team = next((b for b in rows if b.get("scope") == "team" and b.get("team") == "bench"), None)
        spent_everywhere &= bool(key and float(key["spent_usd"]) > 0 and team and float(team["spent_usd"]) > 0)
        print(f"| {mode} | {c} | {r['count']:,} | {usd(key and key['spent_usd'])} | {usd(team and team['spent_usd'])} | "
              f"{usd(key and key['reserved_usd'])} | {usd(key and key['limit_usd'])} |")
    print()
    checks.append(("features-on: spend settled against the key's and the team's budget in every gateway run",
                   spent_everywhere, "from GET /admin/budgets before each gateway stopped"))
    ledger = gdir / "ledger-spend-by-key.json"
    if ledger.exists():
        doc = json.loads(ledger.read_text())
        mine = next((row for row in doc.get("rows", []) if row.get("group") == key_id), None)
        others = [row["group"] for row in doc.get("rows", []) if row.get("group") != key_id]
        print(f"Ledger (`switchyard report spend --by key` on the gateway's SQLite ledger after the last gateway "
              f"stopped): {mine['requests']:,} records for `{key_id}`, {mine['cost_usd']} USD"
              if mine else f"Ledger: no records for `{key_id}`", end="")
        print(f"; other keys: {', '.join(others)}." if others else "; no other key.")
        by_dep = out / "governance" / "ledger-spend-by-deployment.json"
        if by_dep.exists():
            rows = json.loads(by_dep.read_text()).get("rows", [])
            print("By deployment: " + ", ".join(f"`{row['group']}` {row['requests']:,}" for row in rows) + ".")
        print()
        measured = sum(r["count"] for (_, _, t), r in runs.items() if t == "gateway")
        checks.append(("features-on: the ledger holds at least the measured requests, all under the managed key",
                       bool(mine) and not others and mine["requests"] >= measured,
                       f"{mine['requests'] if mine else 0:,} records, {measured:,} requests measured"))
    for name, ok, detail in checks:
        print(f"- {'ok' if ok else 'FAILED'}: {name} ({detail})")
    print()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--line":
        return line(sys.argv[2])
    if len(sys.argv) >= 4 and sys.argv[1] == "--annotate":
        return annotate(sys.argv[2], sys.argv[3], sys.argv[4:])
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/latest")
    meta = json.loads((out / "meta.json").read_text())
    runs = load(out)
    print(f"Run {meta['date']}, commit `{meta['commit']}`{' (with uncommitted changes)' if meta.get('dirty') else ''}, "
          f"{meta['nproc']} × {meta['cpu']}, kernel {meta['kernel']}, nginx {meta['nginx']}, "
          f"{meta['warmup_s']} s warm-up + {meta['duration_s']} s measured per case, median of {meta.get('repeat', 1)} runs, "
          f"gateway binary built {meta.get('gateway_built', '?')}, gateway profile `{profile(meta)}`, "
          f"gateway log level `{meta['gateway_log']}`"
          + (f", extra gateway config `{meta['gateway_toml']!r}`" if meta.get("gateway_toml") else "") + ".")
    print()
    checks = []
    for mode, title in MODES.items():
        concs = sorted({c for (m, c, _) in runs if m == mode})
        if not concs:
            continue
        print(f"### {title}, gateway profile `{profile(meta)}`")
        print()
        print("| conc | direct p50 / p99 µs | nginx added p50 / p99 µs | gateway added p50 / p99 µs "
              "| rps direct | nginx ÷ direct | gateway ÷ direct | gateway ÷ nginx "
              "| CPU µs/req nginx / gateway | 1-core capacity rps nginx / gateway | peak RSS MB nginx / gateway | errors n / g |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in concs:
            d, n, g = (runs.get((mode, c, t)) for t in ("direct", "nginx", "gateway"))
            if d is None:
                continue
            dp50, dp99 = lat(d, "p50"), lat(d, "p99")
            row = [
                str(c),
                f"{fmt_us(dp50)} / {fmt_us(dp99)}",
                f"{fmt_added(lat(n, 'p50'), dp50)} / {fmt_added(lat(n, 'p99'), dp99)}" if n else "–",
                f"{fmt_added(lat(g, 'p50'), dp50)} / {fmt_added(lat(g, 'p99'), dp99)}" if g else "–",
                f"{d['rps']:,.0f}",
                ratio(n and n["rps"], d["rps"]),
                ratio(g and g["rps"], d["rps"]),
                ratio(g and g["rps"], n and n["rps"]),
                f"{cpu_per_req(n)} / {cpu_per_req(g)}",
                f"{capacity(n)} / {capacity(g)}",
                f"{mb(proxy(n, 'vm_hwm_kb')) if n else '–'} / {mb(proxy(g, 'vm_hwm_kb')) if g else '–'}",
                f"{n['errors'] if n else '–'} / {g['errors'] if g else '–'}",
            ]
            print("| " + " | ".join(row) + " |")
            if n and g and c == max(concs):
                checks.append((f"{mode}, concurrency {c}: gateway throughput ≥ nginx's (2% tolerance)",
                               g["rps"] >= 0.98 * n["rps"], f"{g['rps'] / n['rps']:.2f} × nginx"))
            if n and g and c == 1 and None not in (lat(n, "p50"), lat(g, "p50")):
                extra = lat(g, "p50") - lat(n, "p50")
                checks.append((f"{mode}, concurrency 1: added p50 within 50 µs of nginx's",
                               extra <= 50, f"gateway adds {extra:+,} µs more than nginx"))
        print()
        print("Absolute numbers:")
        print()
        print("| conc | target | rps (median; all runs) | p50 µs | p90 µs | p99 µs | max µs | headers p50 µs | total p50 µs "
              "| bytes/answer | errors | core 0: proxy CPU | core 1: sim + loadgen CPU | others' CPU (cores) |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in concs:
            for t in ("direct", "nginx", "gateway"):
                r = runs.get((mode, c, t))
                if r is None:
                    continue
                spread = ", ".join(f"{x:,.0f}" for x in r.get("rps_all", []))
                print(f"| {c} | {t} | {r['rps']:,.0f} ({spread}) | {fmt_us(lat(r, 'p50'))} | {fmt_us(lat(r, 'p90'))} | "
                      f"{fmt_us(lat(r, 'p99'))} | {fmt_us(lat(r, 'max'))} | {fmt_us((r.get('headers_us') or {}).get('p50'))} | "
                      f"{fmt_us((r.get('total_us') or {}).get('p50'))} | {r['response_bytes_mean']:,} | {r['errors']} | "
                      f"{pct(proxy(r, 'cpu_util')) if t != 'direct' else '–'} | "
                      f"{pct((watched(r, 'sim', 'cpu_util') or 0) + (watched(r, 'loadgen', 'cpu_util') or 0))} | "
                      f"{(r.get('machine') or {}).get('others_cores', '–')} |")
        print()
    idle = {t: [r["idle_rss_kb"] for (_, _, tt), r in runs.items() if tt == t and r.get("idle_rss_kb")]
            for t in ("nginx", "gateway")}
    if idle["gateway"]:
        gw_idle = max(idle["gateway"])
        print(f"Idle RSS right after start (max over {len(idle['gateway'])} starts): gateway {mb(gw_idle)} MB"
              + (f", nginx worker {mb(max(idle['nginx']))} MB." if idle["nginx"] else "."))
        print()
        checks.append(("gateway idle RSS under 30 MB", gw_idle < 30 * 1024, f"{mb(gw_idle)} MB"))
    traces = {t: json.loads((out / f"trace-{t}.json").read_text())
              for t in ("direct", "nginx", "gateway") if (out / f"trace-{t}.json").exists()}
    if traces:
        print("### Trace replay (open loop, streaming)")
        print()
        print("| target | offered rps | completed | errors | TTFB p50 / p99 µs | total p50 / p99 µs | CPU µs/req | peak RSS MB |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for t, r in traces.items():
            tt, tot = r.get("ttfb_us") or {}, r.get("total_us") or {}
            cpu = proxy(r, "cpu_us_per_request")
            print(f"| {t} | {r.get('offered_rps')} | {r['count']:,} | {r['errors']} | {fmt_us(tt.get('p50'))} / {fmt_us(tt.get('p99'))} | "
                  f"{fmt_us(tot.get('p50'))} / {fmt_us(tot.get('p99'))} | {cpu if cpu is not None else '–'} | {mb(proxy(r, 'vm_hwm_kb'))} |")
        print()
    governance(out, meta, runs)
    if checks:
        print("### Targets")
        print()
        for name, ok, detail in checks:
            print(f"- {'met' if ok else 'NOT met'}: {name} ({detail})")
        print()


if __name__ == "__main__":
    main()
