#!/usr/bin/env python3
"""When did the slowest messages of an e2e run happen?

Reads the file of `imxbench e2e -latencies FILE` (one "UNIX-NANO LATENCY-NANO"
line per paced message, in send order) and prints the p50 and p99, and how the
slowest 1% spread over the 50 ms intervals of the paced phase: a queue that is
merely long spreads them evenly; stalls pack them into a few intervals.

    python3 docs/benchmarks/tail.py /tmp/lat.txt
"""
import sys

rows = [tuple(map(int, line.split())) for line in open(sys.argv[1])]
lat = sorted(r[1] for r in rows)
n = len(lat)
p99 = lat[int(0.99 * n)]
t0 = rows[0][0]
slow = {}
for sent, l in rows:
    k = (sent - t0) // 50_000_000
    slow[k] = slow.get(k, 0) + (l >= p99)
intervals = max(slow) + 1
counts = sorted(slow.values(), reverse=True)
total, acc, half = sum(counts), 0, 0
for i, c in enumerate(counts):
    acc += c
    if 2 * acc >= total:
        half = i + 1
        break
print("messages %d, p50 %.1f ms, p99 %.1f ms; the slowest 1%% (%d) were sent in %d of the %d 50-ms intervals, half of them in %d"
      % (n, lat[n // 2] / 1e6, p99 / 1e6, total, sum(1 for c in counts if c), intervals, half))
