#!/bin/sh
# Issue 12 acceptance inside a fresh harness guest: the very first command after boot is a full
# `--type auto` run (no -c before it, no warm-up); then the tracefs state must be what it was.
# T and state(): test/harness/tracefs-state.sh, which the tests put before this script in run.sh
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
