# The head of every guest payload (test/helpers.ts writePayloadScript puts it before the payload in
# run.sh): the tracefs state a live run must leave as it found it, one snapshot per call of state().
T=/sys/kernel/tracing
# The kernel's one-way "expanded" flag (set the first time any event is enabled on a boot) only changes
# how buffer_size_kb reads ("7 (expanded: 1408)" -> "7"); the size itself must be the same.
state() { ls $T/instances | sort | tr '\n' ','; echo; cat $T/set_event $T/tracing_on; sed 's/ (expanded: [0-9]*)//' $T/buffer_size_kb; cat $T/trace_clock $T/current_tracer; for c in $T/per_cpu/cpu*; do cat $c/buffer_size_kb; done; cat $T/trace_options | tr '\n' ' '; echo; }
