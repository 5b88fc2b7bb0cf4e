#!/bin/sh
# Cuts the CI samples of our slab scenarios (slableak-named, slableak-merged, churn-none) on every
# kernel the harness records on, from ../rec/{,k5.10-,k6.12-}SCENARIO (see samples/README.md), with the
# tool's own `extract` and a trace cut. expected.json holds the recording's ground truth only (the
# module's guest/ground_truth_info.txt, the guest's /sys/kernel/slab answer on 6.8+, the manifest's
# EXPECT_* of scenario.env), never this tool's output.
# usage (from the checkout, after npm run build): test/scenarios/kernel-samples.sh [SCENARIO...]
set -eu
cd "$(dirname "$0")/../.."
REC=../rec
SYSAK="node dist/src/cli/main.js memleak"
scenarios=${*:-slableak-named slableak-merged churn-none}
for k in "" k5.10- k6.12-; do
	for sc in $scenarios; do
		R=$REC/$k$sc
		[ -e "$R/vmcore.kdump" ] || { echo "skip $R: not recorded"; continue; }
		d=samples/$k$sc
		rm -rf "$d"; mkdir -p "$d/guest"
		# the cache the objects really live in: the module's struct kmem_cache name (5.10, 6.1: for a
		# merged cache, the one SLUB merged it into) or, on 6.8+ where struct kmem_cache is private,
		# the guest's /sys/kernel/slab answer (cache_sysfs.txt)
		cache=$(sed -n 's/^cache=//p' "$R/guest/ground_truth_info.txt")
		[ "$cache" = unknown ] && cache=$(sed -n 's/^cache=//p' "$R/guest/cache_sysfs.txt")
		# no --kallsyms: before 6.0 the extract keeps the kallsyms tables found in the kernel image
		$SYSAK extract --vmcore "$R/vmcore.kdump" --cache "$cache" --trace "$R/guest/trace.txt" -o "$d/vmcore.extract.gz"
		# trace cut: the kernel stacks of slab events go (their call_site= field names the caller);
		# the stacks of page events stay (the page analysis attributes blocks by them). A stack is a
		# separate entry of its CPU's buffer: another CPU's events can come between an event and its
		# stack, so it follows the last event of the same CPU ([NNN]). Recordings without stacks
		# (STACKTRACE=0) are unchanged.
		awk 'function cpu() { return match($0, /\[[0-9]+\]/) ? substr($0, RSTART, RLENGTH) : "" }
			/^ => / { if (k) print; next }
			/<stack trace>/ { k = keep[cpu()]; if (k) print; next }
			/^#/ { print; next }
			{ keep[cpu()] = /: mm_page_(alloc|free)/; print }' \
			"$R/guest/trace.txt" | gzip -9n > "$d/guest/trace.txt.gz"
		cp "$R"/guest/meminfo.before "$R"/guest/meminfo.after "$R"/guest/slabinfo.before "$R"/guest/slabinfo.after "$d/guest/"
		for f in vmallocinfo.before vmallocinfo.after; do gzip -9nc "$R/guest/$f" > "$d/guest/$f.gz"; done
		cp "$R/guest/ground_truth_info.txt" "$d/guest/"
		[ -e "$R/guest/cache_sysfs.txt" ] && cp "$R/guest/cache_sysfs.txt" "$d/guest/"
		/usr/bin/python3 - "$R" "$k$sc" "$cache" > "$d/expected.json" <<'EOF'
import json, sys
rec, name, cache = sys.argv[1:]
info = dict(l.rstrip('\n').split('=', 1) for l in open(f'{rec}/guest/ground_truth_info.txt') if '=' in l)
m = json.load(open(f'{rec}/manifest.json'))
want = {k: v for k, v in m.get('expect', {}).items() if k != 'cache'}  # the cache: from the guest, below
print(json.dumps({
    'recording': name,
    'source': f'../rec/{name} (harness manifest.json expect, guest/ground_truth_info.txt, guest/cache_sysfs.txt on 6.8+)',
    'kernel': open(f'{rec}/guest/uname.txt').read().split()[2],
    'expect': want,
    'cache': cache,
    'leakedTotal': int(info['leaked_total']),
    'leakedWhileTracing': int(info['leaked_slow']),
    'tableObjects': int(info['table_objects']),
    'churnAllocs': int(info['churn_allocs']),
    'churnFrees': int(info['churn_frees']),
}, indent=2))
EOF
		du -sh "$d"
	done
done
