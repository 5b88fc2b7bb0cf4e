#!/bin/sh
# The single executable in the harness guest, as on a production host without Node: the harness puts
# the host's node into every guest, so it is removed first and PATH is checked to hold none. Then a full
# live run (--save), SIGINT and SIGTERM in the middle of further runs, tracefs state compared after each, no
# worker directory left in $TMPDIR, and the saved directory out on stdout as base64 tar.
# T and state(): test/harness/tracefs-state.sh, which the tests put before this script in run.sh
while n=$(command -v node); do rm -f "$n"; done
echo "=== node in PATH: $(command -v node || echo none) (PATH=$PATH)"
S=./sysak-linux-x64
echo "=== files: $(ls | tr '\n' ' ')"
state > /tmp/state.before
# busybox date has no %N: /proc/uptime has centiseconds
up() { cut -d' ' -f1 /proc/uptime; }
t0=$(up)
$S memleak -c > /tmp/check.txt
rc=$?
echo "=== check rc=$rc first-run seconds=$(awk "BEGIN{print $(up) - $t0}")"
cat /tmp/check.txt
echo "=== version: $($S --version)"
t0=$(date +%s)
$S memleak --duration ${DUR:-20} --workers 2 --save /tmp/save > /tmp/run.txt 2> /tmp/run.err
echo "=== run rc=$? seconds=$(( $(date +%s) - t0 ))"
cat /tmp/run.err
state > /tmp/state.after1
echo "=== state equal after run: $(cmp -s /tmp/state.before /tmp/state.after1 && echo yes || echo NO)"
cat /tmp/run.txt
# Ctrl-C and a service manager's stop, each in the middle of a 60 s trace: 130 and 143, tracefs restored.
for sig in INT TERM; do
  $S memleak --duration 60 > /tmp/sig.txt 2> /tmp/sig.err &
  sleep ${SIG_AFTER:-8}; kill -$sig $!; wait $!
  echo "=== sig$sig rc=$?"; cat /tmp/sig.err
  state > /tmp/state.sig
  echo "=== state equal after sig$sig: $(cmp -s /tmp/state.before /tmp/state.sig && echo yes || echo NO)"
  diff /tmp/state.before /tmp/state.sig
done
echo "=== worker dirs left: $(ls -d ${TMPDIR:-/tmp}/sysak-workers-* 2>/dev/null | wc -l)"
echo "=== work dirs left: $(ls -d ${TMPDIR:-/tmp}/sysak-memleak-* 2>/dev/null | wc -l)"
ls -laR ${TMPDIR:-/tmp}/sysak-* 2>/dev/null | head -40
echo "=== SAVE-TAR-BEGIN"
tar czf - -C /tmp save | base64
echo "=== SAVE-TAR-END"
