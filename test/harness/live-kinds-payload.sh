#!/bin/sh
# Live -c and --type auto/page inside the harness guest (vmleak scenarios): prints JSON lines to stdout.
T=/sys/kernel/tracing
S=${SYSAK:-node app/dist/src/cli/main.js}
state() { ls $T/instances | sort | tr '\n' ','; echo; cat $T/set_event $T/tracing_on; sed 's/ (expanded: [0-9]*)//' $T/buffer_size_kb; cat $T/trace_clock; for c in $T/per_cpu/cpu*; do cat $c/buffer_size_kb; done; }
state > /tmp/state.before
echo "=== check"
$S memleak -c -i 10
echo "=== auto"
t0=$(date +%s)
$S memleak --duration ${DUR:-20} --json > /tmp/auto.json 2> /tmp/auto.err
echo "=== auto rc=$? seconds=$(( $(date +%s) - t0 ))"
cat /tmp/auto.err
node -e 'const r=require("/tmp/auto.json"); console.log(JSON.stringify({type:r.type, verdict:r.verdict, reason:r.verdictReason, callers:(r.callers||r.callSites||[]).slice(0,4), live:r.live&&{...r.live, check: r.live.check && r.live.check.leak}, warnings:r.warnings}))'
if [ "${PAGE:-1}" = 1 ]; then
  echo "=== page"
  $S memleak --duration ${DUR:-20} -t page --json > /tmp/page.json 2> /tmp/page.err
  echo "=== page rc=$?"
  cat /tmp/page.err
  node -e 'const r=require("/tmp/page.json"); console.log(JSON.stringify({type:r.type, verdict:r.verdict, reason:r.verdictReason, callers:(r.callers||[]).slice(0,4), trace:r.trace, census:r.dumpPages&&r.dumpPages.headers.slice(0,2)}))'
fi
state > /tmp/state.after
echo "=== state equal: $(cmp -s /tmp/state.before /tmp/state.after && echo yes || echo NO)"
diff /tmp/state.before /tmp/state.after
