#!/usr/bin/env python3
"""Where a BPF program's verification goes: the instructions the verifier processed, by source line
and by file, from a level-6 log (bench/tools/vstat.c: VSTAT_DUMP=prog VSTAT_LEVEL=6
VSTAT_LOGSZ=$((1000<<20)) vstat OBJ 2> prog.log). usage: verifier-hist.py prog.log [lines]
A line counted many times is walked once per verifier state that reaches it: an inlined helper
reached in many states is a candidate for a global function (verified once)."""
import re, sys, collections
log = sys.argv[1]
ins = re.compile(rb'^(\d+): \(([0-9a-f]{2})\)')
lin = re.compile(rb'^; (.*) @ ([\w.]+):(\d+)$')
cnt = collections.Counter(); idx_lin = {}; pending = None
started = False
with open(log, 'rb') as f:
    for line in f:
        if not started:
            if line.startswith(b'0: R1'): started = True
            continue
        m = lin.match(line)
        if m:
            pending = (m.group(2).decode(), int(m.group(3)), m.group(1)[:90].decode(errors='replace')); continue
        m = ins.match(line)
        if m:
            i = int(m.group(1)); cnt[i] += 1
            if pending is not None:
                idx_lin.setdefault(i, pending); pending = None
# propagate linfo forward by idx
cur = ('?', 0, '')
full = {}
for i in range(0, max(cnt) + 1):
    if i in idx_lin: cur = idx_lin[i]
    full[i] = cur
by = collections.Counter(); byfile = collections.Counter()
for i, c in cnt.items():
    f, l, t = full[i]; by[(f, l, t)] += c; byfile[f] += c
print('total', sum(cnt.values()))
for k, v in byfile.most_common(): print(f'{v:8d} {k}')
print()
for (f, l, t), v in by.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 60): print(f'{v:8d} {f}:{l} {t}')
