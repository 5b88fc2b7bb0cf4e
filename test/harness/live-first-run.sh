#!/bin/sh
# Issue 12 acceptance inside a fresh harness guest: the very first command after boot is a full
# `--type auto` run (no -c before it, no warm-up); then the tracefs state must be what it was.
T=/sys/kernel/tracing
# The kernel's one-way "expanded" flag (set the first time any event is enabled on a boot) only changes
# how buffer_size_kb reads ("7 (expanded: 1408)" -> "7"); the size itself must be the same.
state() { ls $T/instances | sort | tr '\n' ','; echo; cat $T/set_event $T/tracing_on; sed 's/ (expanded: [0-9]*)//' $T/buffer_size_kb; cat $T/trace_clock $T/current_tracer; for c in $T/per_cpu/cpu*; do cat $c/buffer_size_kb; done; cat $T/trace_options | tr '\n' ' '; echo; }
S=${SYSAK:-node app/dist/src/cli/main.js}
state > /tmp/state.before
t0=$(date +%s)
$S memleak --duration ${DUR:-20} --type auto --json > /tmp/run.json 2> /tmp/run.err
echo "=== first rc=$? seconds=$(( $(date +%s) - t0 ))"
cat /tmp/run.err
state > /tmp/state.after
echo "=== state equal: $(cmp -s /tmp/state.before /tmp/state.after && echo yes || echo NO)"
diff /tmp/state.before /tmp/state.after
echo "=== summary"
node -e 'const r=require("/tmp/run.json"); const c=r.live&&r.live.check; console.log(JSON.stringify({type:r.type, verdict:r.verdict, leakers:r.verdict&&r.verdict.leakers&&r.verdict.leakers.map(l=>l.function), analysed:r.analysed, leak:c&&c.leak, kinds:c&&c.kinds.map(k=>[k.kind,k.growth,k.leaking,k.why]), decision:c&&c.decision, warnings:r.warnings}))'
