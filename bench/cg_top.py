#!/usr/bin/env python3
"""cg_top.py DUMP [N] [FUNC]: self cost per function of one callgrind dump (the N costliest), and
with FUNC the instructions spent inside FUNC (inclusive) by each caller.  Used by bench/bulk_cg.sh;
reads callgrind's format directly (callgrind_annotate 3.19 attributes a dump made after
callgrind_control -z to "(below main)")."""
import collections
import re
import sys

names = {}
self_cost = collections.Counter()
callers = collections.Counter()
fn = cfn = None
in_call = False
for line in open(sys.argv[1]):
    line = line.rstrip('\n')
    m = re.match(r'(c?fn)=\((\d+)\)(?: (.*))?$', line)
    if m:
        if m.group(3):
            names[m.group(2)] = m.group(3)
        name = names.get(m.group(2), m.group(2))
        if m.group(1) == 'fn':
            fn = name
        else:
            cfn = name
        continue
    if line.startswith('calls='):
        in_call = True
        continue
    if line[:1].isdigit() or line[:1] in '+-*':
        fields = line.split()
        if len(fields) < 2 or fn is None:
            continue
        if in_call:  # the inclusive cost of the call just named
            in_call = False
            callers[(cfn, fn)] += int(fields[1])
        else:
            self_cost[fn] += int(fields[1])
total = sum(self_cost.values())
n = int(sys.argv[2]) if len(sys.argv) > 2 else 15
for f, c in self_cost.most_common(n):
    print("%14d %5.1f%%  %s" % (c, 100.0 * c / total, f))
if len(sys.argv) > 3:
    print("callers of %s (inclusive):" % sys.argv[3])
    for (callee, caller), c in callers.most_common():
        if callee == sys.argv[3]:
            print("%14d %5.1f%%  %s" % (c, 100.0 * c / total, caller))
