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


def wrk_rps(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return None
    m = re.search(r"Requests/sec:\s+([\d.]+)", open(path).read())
    return float(m.group(1)) if m else None


floor = load("floor.json")
seq = load("sequencer.json")
fl = floor["floor_entries_per_s"] if floor else None
print(f"Machine: {nproc} vCPUs, {cpu}")
print()
if floor:
    print(
        f"Crypto floor (one core): {fl:,.0f} entries/s ({floor['floor_us_per_entry']:.1f} µs/entry) = one leaf-signature verification "
        f"({floor['rsa_share']*100:.0f}% RSA-2048 at {floor['rsa2048_verify_per_s']:,.0f}/s, "
        f"the rest P-256 at {floor['p256_verify_per_s']:,.0f}/s) + one SCT signature "
        f"({floor['sct_sign_per_s']:,.0f}/s)"
    )
if seq:
    print(
        f"Sequencer alone (in-memory store): {seq['entries_per_s']:,.0f} entries/s wall, "
        f"{seq['entries_per_cpu_s'] or 0:,.0f} per CPU-second "
        f"({seq['entries']:,} entries, ~{seq['mean_tile_leaf_bytes']} B TileLeaf)"
    )
pre = load("prefill.json")
if pre:
    print(f"Prefill: {pre['entries']:,} entries in {pre['seconds']} s through batchers+sequencer (fs, {pre['disk']} on disk)")
print()
print("| run | load | accepted/s | vs floor (throughput) | errors | p50 s | p90 s | p99 s | max s | server CPU busy | server CPU µs/entry | vs floor (CPU/entry) | server peak RSS MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for label in ["fs-rate", "s3-rate", "fs-capacity", "fs-rate-after-prefill"]:
    r = load(label + ".json")
    if not r:
        continue
    errors = {k: v for k, v in r["statuses"].items() if k != "200"}
    if r.get("not_started_client_saturated"):
        errors["not-started"] = r["not_started_client_saturated"]
    if r.get("chains_exhausted"):
        errors["chains-exhausted"] = 1
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
a, b = load("fs-rate.json"), load("fs-rate-after-prefill.json")
if a and b and pre:
    print()
    print(
        f"Scale ({pre['entries']:,} entries prefilled): accepted/s {b['accepted_per_s'] / a['accepted_per_s'] * 100:.1f}% "
        f"of the empty log, p99 {b['latency_s']['p99']:.3f} s vs {a['latency_s']['p99']:.3f} s "
        f"({(b['latency_s']['p99'] / a['latency_s']['p99'] - 1) * 100:+.1f}%)"
    )
for kind, suffix in [("hot, 100 tiles", "-hot"), ("cold, up to 2000 tiles", "")]:
    c, n = wrk_rps(f"wrk-ctlog{suffix}.txt"), wrk_rps(f"wrk-nginx{suffix}.txt")
    if c and n:
        print()
        print(
            f"Read path ({kind}; full tiles, wrk -t1 -c64 -d10s, server on one core): "
            f"ct-log {c:,.0f} GET/s, nginx {n:,.0f} GET/s, ratio {c / n:.2f}"
        )
