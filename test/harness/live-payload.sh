#!/bin/sh
# Live-mode acceptance inside the harness guest: tracefs state before/after, a full run with --save
# (--type $TYPE, default auto) as the first command after boot, the quick check, a SIGINT in the middle
# of another run; the saved directory goes out on stdout as base64 tar.
# T and state(): test/harness/tracefs-state.sh, which the tests put before this script in run.sh
cat $T/buffer_size_kb
S=${SYSAK:-node app/dist/src/cli/main.js}
state > /tmp/state.before
echo "=== uname: $(uname -r) cmdline: $(cat /proc/cmdline)"
# the full run is the first sysak command after boot (nothing warmed up tracefs, the page cache or kcore)
t0=$(date +%s)
$S memleak --duration ${DUR:-20} --type ${TYPE:-auto} --json --save /tmp/save > /tmp/run.json 2> /tmp/run.err
echo "=== run rc=$? seconds=$(( $(date +%s) - t0 ))"
cat /tmp/run.err
state > /tmp/state.after1
cat $T/buffer_size_kb
echo "=== state equal after run: $(cmp -s /tmp/state.before /tmp/state.after1 && echo yes || echo NO)"
node -e 'const r=require("/tmp/run.json"); console.log(JSON.stringify({verdict:r.verdict, cache:r.cache, live:{...r.live, check: undefined}, type:r.type, callSites:(r.callSites||r.callers||[]).slice(0,5), warnings:r.warnings, source:r.source, scan:r.scan, trace: r.trace && r.trace.stats && {events: r.trace.stats.events, lost: r.trace.stats.lostEvents, window: r.trace.window}}))'
echo "=== check"
$S memleak -c
echo "=== sigint"
$S memleak --duration 60 --type ${TYPE:-auto} --json > /tmp/int.json 2> /tmp/int.err &
pid=$!
sleep ${INT_AFTER:-8}
ls $T/instances
kill -INT $pid
wait $pid
echo "=== sigint rc=$?"
cat /tmp/int.err
state > /tmp/state.after2
echo "=== state equal after sigint: $(cmp -s /tmp/state.before /tmp/state.after2 && echo yes || echo NO)"
diff /tmp/state.before /tmp/state.after2
echo "=== save"
ls -la /tmp/save /tmp/save/guest
echo "=== SAVE-TAR-BEGIN"
tar czf - -C /tmp save | base64
echo "=== SAVE-TAR-END"
