#!/usr/bin/env python3
"""Prints the bench.sh results folder as one Markdown table (stdout)."""
import json
import os
import re
import sys

out, nproc, cpu = sys.argv[1], sys.argv[2], sys.argv[3]


def load(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_trouble(label, r, exhausted):
    """What went wrong in a replay beyond its statuses: requests the load
    generator could not start, connections the kernel dropped with a full
    accept queue (machine-wide, from nstat), chains run out (named
    `exhausted`)."""
    trouble = {}
    if r.get("not_started_client_saturated"):
        trouble["not-started"] = r["not_started_client_saturated"]
    try:
        with open(os.path.join(out, label + ".listen-drops")) as f:
            drops = int(f.read())
    except (OSError, ValueError):
        drops = 0
    if drops:
        trouble["listen drops"] = drops
    if r.get("chains_exhausted"):
        trouble[exhausted] = 1
    return trouble


def wrk(*names):
    """(requests/s, server CPU µs per request or None) over the wrk runs
    named that exist (requests/s their mean, CPU their total over all their
    requests), or None. The read path's requests are GETs, the refusal's POSTs."""
    runs = []
    for name in names:
        path = os.path.join(out, name)
        if not os.path.exists(path):
            continue
        text = open(path).read()
        rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
        total = re.search(r"(\d+) requests in", text)
        cpu = re.search(r"server CPU seconds: ([\d.]+)", text)
        if rps:
            runs.append((float(rps.group(1)), total and int(total.group(1)), cpu and float(cpu.group(1))))
    if not runs:
        return None
    gets = sum(r[1] or 0 for r in runs)
    per_get = None
    if all(r[1] and r[2] is not None for r in runs):
        per_get = sum(r[2] for r in runs) * 1e6 / gets
    return sum(r[0] for r in runs) / len(runs), per_get


def text(name):
    path = os.path.join(out, name)
    return open(path).read().strip() if os.path.exists(path) else "?"


floor = load("floor.json")
seq = load("sequencer.json")
fl = floor["floor_entries_per_s"] if floor else None
print(f"Machine: {nproc} vCPUs, {cpu}")
print(f"Load before: {text('uptime-before.txt')}")
print(f"Load after:  {text('uptime-after.txt')}")
print()
if floor:
    print(
        f"Crypto floor (one core, OpenSSL-class: {floor.get('library', '?')}): {fl:,.0f} entries/s "
        f"({floor['floor_us_per_entry']:.1f} µs/entry) = one leaf-signature verification "
        f"({floor['rsa_share']*100:.0f}% RSA-2048 at {floor['rsa2048_verify_per_s']:,.0f}/s, "
        f"the rest P-256 at {floor['p256_verify_per_s']:,.0f}/s) + one P-256 signature "
        f"({floor.get('p256_sign_per_s', 0):,.0f}/s); the server's RFC 6979 SCT signer: "
        f"{floor['sct_sign_per_s']:,.0f}/s"
    )
# Per tenth of the run, only when every tenth was long enough to time: a
# short run (BENCH_QUICK) times a few of them, and those few say nothing.
segments = [x["entries_per_cpu_s"] for x in (seq or {}).get("segments", [])]
segments = segments if segments and all(segments) else []
if seq:
    print(
        f"Sequencer alone (in-memory store): {seq['entries_per_s']:,.0f} entries/s wall, "
        f"{seq['entries_per_cpu_s'] or 0:,.0f} per CPU-second "
        f"({seq['entries']:,} entries, ~{seq['mean_tile_leaf_bytes']} B TileLeaf"
        + (f"; the sender's {seq['sender_cpu_s']:.1f} CPU-s making them left out" if "sender_cpu_s" in seq else "")
        + ")"
        + (f"; per tenth of the run {min(segments):,.0f} to {max(segments):,.0f} per CPU-second" if segments else "")
    )
pre = load("prefill.json")
if pre:
    print(f"Prefill: {pre['entries']:,} entries in {pre['seconds']} s through batchers+sequencer (fs, {pre['disk']} on disk)")
print()
print("| run | load | accepted/s | vs floor (throughput) | errors | p50 s | p90 s | p99 s | max s | server CPU busy | server CPU µs/entry | vs floor (CPU/entry) | server peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
OVERLOAD = ["overload-0.5", "overload-1", "overload-2", "overload-4"]
# Requests that got no HTTP answer at all, by cause (ct-loadgen names it).
failed = []
for label in ["fs-rate", "s3-rate", "fs-capacity", "fs-rate-after-prefill"] + OVERLOAD:
    r = load(label + ".json")
    if not r:
        continue
    if r.get("conn_error_causes"):
        failed.append((label, r["conn_error_causes"]))
    errors = {k: v for k, v in r["statuses"].items() if k != "200"}
    errors.update(run_trouble(label, r, "chains-exhausted"))
    err = ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none"
    lat = r["latency_s"]
    ratio = f"{r['accepted_per_s'] / fl * 100:.0f}%" if fl else "-"
    cpu_us = r.get("server_cpu_per_accepted_us") or 0
    rss = r.get("server_rss_peak_mib") or 0
    busy = (r.get("server_cpu_utilization") or 0) * 100
    eff = f"{floor['floor_us_per_entry'] / cpu_us * 100:.0f}%" if floor and cpu_us else "-"
    print(
        f"| {label} | {r['mode']}, {r['duration_s']:.0f} s | {r['accepted_per_s']:,.0f} | {ratio} | {err} | "
        f"{lat['p50']:.3f} | {lat['p90']:.3f} | {lat['p99']:.3f} | {lat['max']:.3f} | "
        f"{busy:.0f}% | {cpu_us:,.0f} | {eff} | {rss:.0f} |"
    )
if failed:
    print()
    for label, causes in failed:
        print(f"No answer in {label}: " + "; ".join(f"{n} × {cause}" for cause, n in causes.items()))
a, b = load("fs-rate.json"), load("fs-rate-after-prefill.json")
if a and b and pre:
    print()
    print(
        f"Scale ({pre['entries']:,} entries prefilled): accepted/s {b['accepted_per_s'] / a['accepted_per_s'] * 100:.1f}% "
        f"of the empty log, p99 {b['latency_s']['p99']:.3f} s vs {a['latency_s']['p99']:.3f} s "
        f"({(b['latency_s']['p99'] / a['latency_s']['p99'] - 1) * 100:+.1f}%)"
    )
capacity = load("fs-capacity.json")
# The overload runs' own capacity: measured under the same CPU quota when
# the server was held to a share of its core.
share = (load("overload.json") or {}).get("cpu_share", 1)
overload_capacity = load("overload-capacity.json") if share != 1 else capacity
runs = [(label, load(label + ".json")) for label in OVERLOAD]
runs = [(label, r) for label, r in runs if r]
# A closed loop waits for its own answers, so it can understate what the
# log accepts: goodput is also read against the most any run accepted, or
# what the run offered where that was less.
most = max([r["accepted_per_s"] for _, r in runs] + [overload_capacity["accepted_per_s"] if overload_capacity else 0])


def goodput(r):
    offered = re.search(r"rate (\d+)/s", r["mode"])
    return r["accepted_per_s"] / min(most, float(offered.group(1)) if offered else most)


if runs and overload_capacity:
    where = "fs-capacity" if share == 1 else f"closed loop with the server held to {share:g} of its core by a cgroup quota, as in every run below"
    print()
    print(f"Overload (open loop, period 1 s; capacity = {where}: {overload_capacity['accepted_per_s']:,.0f} accepted/s):")
    print()
    print("| offered | accepted/s | goodput vs capacity | goodput vs the most accepted (or offered) | 503/s | 503 p50 s | 503 p99 s | accepted p50 s | accepted p99 s | other errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, r in runs:
        refused = r["statuses"].get("503", 0) / r["duration_s"]
        other = {k: v for k, v in r["statuses"].items() if k not in ("200", "503")}
        other.update(run_trouble(label, r, "chains-exhausted (the figures are not valid)"))
        rl, al = r.get("refused_latency_s", {}), r["latency_s"]
        print(
            f"| {label.split('-')[1]}× ({r['mode']}) | {r['accepted_per_s']:,.0f} | "
            f"{r['accepted_per_s'] / overload_capacity['accepted_per_s'] * 100:.0f}% | "
            f"{goodput(r) * 100:.0f}% | {refused:,.0f} | "
            f"{rl.get('p50', 0):.3f} | {rl.get('p99', 0):.3f} | {al['p50']:.3f} | {al['p99']:.3f} | "
            f"{', '.join(f'{k}: {v}' for k, v in other.items()) or 'none'} |"
        )
reads = {}
for kind, suffixes in [("hot", ["-hot"]), ("cold", ["", "-again"])]:
    c = wrk(*[f"wrk-ctlog{s}.txt" for s in suffixes])
    n = wrk(*[f"wrk-nginx{s}.txt" for s in suffixes])
    if c and n:
        reads[kind] = (c, n)
        cpu = ""
        if c[1] and n[1]:
            cpu = f"; server CPU per GET: ct-log {c[1]:.1f} µs, nginx {n[1]:.1f} µs, ratio {n[1] / c[1]:.2f}"
        tiles = "100 tiles" if kind == "hot" else "up to 2000 tiles, two runs each, alternated"
        print()
        print(
            f"Read path ({kind}, {tiles}; full tiles, wrk -t1 -c64 -d10s, server on one core): "
            f"ct-log {c[0]:,.0f} GET/s, nginx {n[0]:,.0f} GET/s, ratio {c[0] / n[0]:.2f}{cpu}"
        )

refuse = [wrk(f"wrk-refuse-{name}.txt", f"wrk-refuse-{name}-again.txt") for name in ("ctlog", "nginx")]
if all(r and r[1] for r in refuse):
    print()
    print(
        "Refusal (the same add-chain POST, testdata/dev/add-chain.json; wrk -t1 -c64 -d10s, closed loop, "
        f"two runs each, alternated): server CPU per refused request: ct-log {refuse[0][1]:.1f} µs (410), "
        f"nginx {refuse[1][1]:.1f} µs (`return 503`), ratio {refuse[0][1] / refuse[1][1]:.2f}"
    )


def per_cpu_s(r):
    return r["accepted"] / r["server_cpu_s"] if r and r.get("server_cpu_s") else None


cores = load("cores.json") or {"steps": []}
steps = [(step, load(f"cores-{step['cores']}.json")) for step in cores["steps"]]
steps = [(step, r) for step, r in steps if per_cpu_s(r)]
by_cores = {step["cores"]: r for step, r in steps}


def shared(step):
    """Whether the load generator ran on the server's own cores."""
    return step["server_cpus"] == step["loadgen_cpus"]


def step_errors(step, r):
    """A step's statuses other than 200 and its trouble; any but 503s
    (shed load) make its figures unfit for a goal."""
    errors = {k: v for k, v in r["statuses"].items() if k != "200"}
    errors.update(run_trouble(f"cores-{step['cores']}", r, "chains-exhausted"))
    return errors


valid = {step["cores"]: r for step, r in steps if set(step_errors(step, r)) <= {"503"}}
base = per_cpu_s(valid.get(1))
if steps:
    print()
    print(
        f"Cores (closed loop of 1,000 connections per server core, period {cores['period_ms']} ms, "
        "a fresh fs log per step; the server's runtimes size themselves to its cores):"
    )
    print()
    print("| server cores | server CPUs | load generator CPUs | accepted/s | errors | p50 s | p99 s | server CPU busy (cores) | accepted per server CPU-second | vs one core | load generator CPU-s per s (whole run) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for step, r in steps:
        errors = step_errors(step, r)
        on = " (shared)" if shared(step) else ""
        vs = f"{per_cpu_s(r) / base * 100:.0f}%" if base else "-"
        loadgen = r.get("loadgen_cpu_s_total")
        loadgen = f"{loadgen / r['duration_s']:.2f}" if loadgen else "-"
        print(
            f"| {step['cores']} | {step['server_cpus']} | {step['loadgen_cpus']}{on} | {r['accepted_per_s']:,.0f} | "
            f"{', '.join(f'{k}: {v}' for k, v in errors.items()) or 'none'} | {r['latency_s']['p50']:.3f} | "
            f"{r['latency_s']['p99']:.3f} | {r['server_cpu_s'] / r['duration_s']:.2f} | {per_cpu_s(r):,.0f} | {vs} | "
            f"{loadgen} |"
        )


def cores_goals():
    """Item 3: every step within 85% of one core's figure per CPU-second,
    30,000 accepted/s at 12 cores. A step this machine lacks, or whose
    run went wrong (errors beyond 503s, chains run out), is named."""
    wanted = [1, 2, 4, 8, 12]
    unfit = [n for n in wanted if n in by_cores and n not in valid]
    lacking = [n for n in wanted if n > int(nproc)]
    other = [n for n in wanted if n not in valid and n not in unfit and n not in lacking]
    notes = [
        f"{', '.join(map(str, ns))} cores {why}"
        for ns, why in [
            (unfit, "not valid (see the table's errors)"),
            (lacking, f"not measured here ({nproc} vCPUs)"),
            (other, "not run or without a CPU figure"),
        ]
        if ns
    ]
    missing = "; " + "; ".join(notes) if notes else ""
    if base and len(valid) > 1:
        worst = min((per_cpu_s(r) / base, n) for n, r in valid.items() if n != 1)
        sharing = [step["cores"] for step, _ in steps if shared(step)]
        note = f" (the load generator shared the cores at {', '.join(map(str, sharing))})" if sharing else ""
        goal(
            "accepted per server CPU-second at 1, 2, 4, 8 and 12 cores",
            "≥ 85% of one core's at every step",
            f"lowest {worst[0] * 100:.0f}% (at {worst[1]} cores){note}{missing}",
            worst[0] >= 0.85 and not notes,
        )
    else:
        goal("accepted per server CPU-second at 1, 2, 4, 8 and 12 cores", "≥ 85% of one core's at every step", None, False)
    twelve = by_cores.get(12)
    fit = 12 in valid
    measured = twelve and f"{twelve['accepted_per_s']:,.0f}" + ("" if fit else " (not valid: see the table's errors)")
    goal("accepted/s at 12 cores", "≥ 30,000", measured, fit and twelve["accepted_per_s"] >= 30_000)


def goal(name, target, measured, met):
    verdict = "not measured here" if measured is None else ("yes" if met else "**no**")
    print(f"| {name} | {target} | {measured or '-'} | {verdict} |")


print()
print("Issue 16, each figure beside its goal:")
print()
print("| figure | goal | measured | met? |")
print("|---|---|---|---|")
for label in ["fs-capacity", "fs-rate"]:
    r = load(label + ".json")
    cpu_us = r and r.get("server_cpu_per_accepted_us")
    if floor and cpu_us:
        ratio = floor["floor_us_per_entry"] / cpu_us
        goal(
            f"server CPU per accepted entry ({label})",
            "≤ 2× the OpenSSL-class floor (≥ 50%)",
            f"{cpu_us:.0f} µs vs floor {floor['floor_us_per_entry']:.1f} µs = {ratio * 100:.0f}% of the floor",
            ratio >= 0.5,
        )
if seq:
    flat = f"; per tenth {min(segments):,.0f}-{max(segments):,.0f}" if segments else ""
    goal(
        f"sequencer alone, 0 to {seq['entries']:,} entries",
        "≥ 250,000 entries per CPU-second, flat",
        f"{seq['entries_per_cpu_s'] or 0:,.0f}{flat}",
        (seq["entries_per_cpu_s"] or 0) >= 250_000 and (not segments or min(segments) >= 250_000),
    )
for kind in ["cold", "hot"]:
    if kind in reads:
        (c, n) = reads[kind]
        cpu = f"; CPU per GET {n[1] / c[1]:.2f}×" if c[1] and n[1] else ""
        goal(f"{kind} tile reads vs nginx", "≥ 0.8× nginx", f"{c[0] / n[0]:.2f}× GET/s{cpu}", c[0] / n[0] >= 0.8)
    else:
        goal(f"{kind} tile reads vs nginx", "≥ 0.8× nginx", None, False)
def overload_goal():
    """The goal row of item 1, from the runs at 1× capacity and beyond."""
    loaded = [r for label, r in runs if label != "overload-0.5"]
    if not loaded or not overload_capacity:
        return goal("p99 of accepted submissions at up to 4× capacity (period 1 s)", "≤ 1.2 s, goodput ≥ 90%, surplus refused in 100 ms", None, False)
    p99 = max(r["latency_s"]["p99"] for r in loaded)
    least = min(goodput(r) for r in loaded)
    refusal = max(r.get("refused_latency_s", {}).get("p99", 0) for r in loaded)
    bad = sum(v for r in loaded for k, v in r["statuses"].items() if k not in ("200", "503"))
    goal(
        "p99 of accepted submissions at up to 4× capacity (period 1 s)",
        "≤ 1.2 s, goodput ≥ 90%, surplus refused in 100 ms",
        f"p99 ≤ {p99:.3f} s; goodput ≥ {least * 100:.0f}% of the most accepted ({most:,.0f}/s); 503 p99 ≤ {refusal * 1000:.0f} ms; {bad} other errors",
        p99 <= 1.2 and least >= 0.9 and refusal <= 0.1 and bad == 0,
    )


overload_goal()


def refusal_goal():
    """What a refusal costs, against an accepted entry (fs-rate). Offered k
    times capacity, goodput is (1 - k·x) / (1 - x) of capacity when a
    refusal costs x of an accepted entry: 90% at 4x needs x <= 1/31."""
    refused, accepted = load("refusal.json"), load("fs-rate.json")
    name, target = "server CPU per refused submission", "a small fraction of an accepted entry's (≤ 3.2%: goodput 90% at 4×)"
    if not refused or not refused["requests"] or not accepted or not accepted.get("server_cpu_per_accepted_us"):
        return goal(name, target, None, False)
    per = refused["server_cpu_s"] * 1e6 / refused["requests"]
    share = per / accepted["server_cpu_per_accepted_us"]
    nginx = ""
    if all(r and r[1] for r in refuse):
        x = refuse[1][1] / accepted["server_cpu_per_accepted_us"]
        nginx = (
            f"; nginx refuses the same POST at {refuse[1][1]:.1f} µs (ct-log {refuse[0][1]:.1f} µs, closed loop): "
            f"at that cost goodput at 4× is at most {(1 - 4 * x) / (1 - x) * 100:.0f}%"
        )
    goal(name, target, f"{per:.1f} µs = {share * 100:.1f}% of an accepted entry (fs-rate){nginx}", share <= 1 / 31)


refusal_goal()
half = dict(runs).get("overload-0.5")
# Four decimals: a p50 of 0.6004 s must not read "0.600 s, not met".
goal("p50 at 50% load", "≤ 0.6 s", half and f"{half['latency_s']['p50']:.4f} s", bool(half) and half["latency_s"]["p50"] <= 0.6)
cores_goals()
