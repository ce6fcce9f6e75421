#!/usr/bin/env python3
"""Did an imxd run while the slowest messages waited?

    curl -o /tmp/b.trace "http://ADMIN/debug/pprof/trace?seconds=8"   # during the paced phase
    go tool trace -d=parsed /tmp/b.trace > /tmp/b.parsed
    python3 docs/benchmarks/stalls.py /tmp/b.parsed /tmp/lat.txt

For the slowest 0.1% of the paced messages (imxbench e2e -latencies), grouped
into stalls, it prints the count of trace events of that process in each
millisecond from 2 ms before the send to the arrival, and the GC phases and
stops of the world that overlap. A millisecond without an event, while
messages wait, is one in which the process did not run at all.
"""
import collections
import datetime
import re
import sys


def wall_ns(s):
    whole, frac = s.rstrip("Z").split(".")
    sec = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp()
    return int(sec) * 10**9 + int(frac.ljust(9, "0")[:9])


sync, ranges, opened, per_ms = None, [], {}, collections.Counter()
for line in open(sys.argv[1]):
    if not line.startswith("M="):
        continue
    m = re.search(r" (\w+) Time=(\d+)", line)
    if not m:
        continue
    ev, t = m.group(1), int(m.group(2))
    per_ms[t // 1_000_000] += 1
    if ev == "Sync" and sync is None and "Wall=" in line:
        sync = wall_ns(re.search(r"Wall=(\S+)", line).group(1)) - t
    elif ev in ("RangeBegin", "RangeEnd"):
        name = re.search(r'Name="([^"]*)"', line).group(1)
        if name in ("GC incremental sweep", "GC mark assist"):
            continue
        key = (name, re.search(r"Scope=(\S+)", line).group(1))
        if ev == "RangeBegin":
            opened[key] = t
        elif key in opened:
            ranges.append((opened.pop(key), t, name))

rows = [tuple(map(int, line.split())) for line in open(sys.argv[2])]
first, last = (min(per_ms) * 10**6 + sync), (max(per_ms) * 10**6 + sync)
rows = [r for r in rows if first <= r[0] <= last]
lat = sorted(r[1] for r in rows)
worst = [r for r in rows if r[1] >= lat[int(0.999 * len(lat))]]
stalls = []
for sent, l in worst:
    if stalls and sent - stalls[-1][1] < 5_000_000:
        stalls[-1][1], stalls[-1][2] = sent, max(stalls[-1][2], l)
    else:
        stalls.append([sent, sent, l])
for sent, _, l in stalls:
    a, b = sent - 2_000_000 - sync, sent + l - sync
    events = [per_ms.get(k, 0) for k in range(a // 1_000_000, b // 1_000_000 + 1)]
    print("sent at %.3f s, worst %.1f ms; events per ms: %s" % ((sent / 1e9) % 1000, l / 1e6, events))
    for x, y, name in ranges:
        if y > a and x < b:
            print("    %s: %.2f ms, from +%.1f ms" % (name, (y - x) / 1e6, (x - a) / 1e6))
