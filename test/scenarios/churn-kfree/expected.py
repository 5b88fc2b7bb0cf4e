#!/usr/bin/python3
# samples/<scenario>/expected.json from a churn recording's ground truth (module info/objects files and
# the module's call-site names in trace.txt), never from sysak's output.
# usage: expected.py SCENARIO RECORDING_DIR OUT.json
import json, sys, re
sc, rec = sys.argv[1], sys.argv[2]
info = dict(l.rstrip('\n').split('=', 1) for l in open(f'{rec}/guest/ground_truth_info.txt') if '=' in l)
objs = [l.split() for l in open(f'{rec}/guest/ground_truth_objects.txt') if not l.startswith('#') and l.strip()]
leaks = {}
for o in objs:
    if o[0] != 'leak': continue
    kv = dict(x.split('=', 1) for x in o[3:])
    d = leaks.setdefault(kv['fn'], {'leaked': 0, 'leakedWhileTracing': 0})
    d['leaked'] += 1
    d['leakedWhileTracing'] += kv['phase'] == 'slow'
# allocations of the replacing site in the trace (module's own call-site names, not the tool's)
trace = open(f'{rec}/guest/trace.txt', errors='replace').read()
exp = {
  'recording': sc,
  'source': f'../rec/{sc} (module ground truth: guest/ground_truth_info.txt, guest/ground_truth_objects.txt; trace call sites)',
  'cache': info['cache'],
  'freeMode': info['free_mode'],
  'leakers': leaks,
  'tableObjects': int(info['table_objects']),
}
if info.get('replacing_sites'):
  exp['replacing'] = {'function': info['replacing_sites'], 'replacedWhileTracing': int(info['table_replaced']),
    'freedWhileTracing': int(info['table_freed']), 'freeSite': info['replacing_free_sites'],
    'allocEventsInTrace': len(re.findall(r'kmalloc: call_site=churn_rec_replace\+', trace)),
    'freeEventsInTrace': len(re.findall(r'kfree: call_site=' + re.escape(info['replacing_free_sites']) + r'\+', trace))}
json.dump(exp, open(sys.argv[3], 'w'), indent=2); print(json.dumps(exp))
