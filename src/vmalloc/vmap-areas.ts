/**
 * vmalloc use by caller from a dump: list_for_each_entry(va, &vmap_area_list, list), then
 * va->vm->{addr, size, flags, nr_pages, caller} (VMCOREINFO exports SYMBOL(vmap_area_list),
 * OFFSET(vmap_area.va_start) and OFFSET(vmap_area.list); the rest comes from BTF). Only VM_ALLOC areas
 * count, as /proc/vmallocinfo's "vmalloc" ones.
 */
import { MemleakError } from '../errors.js';
import { hex } from '../hex.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import type { OpenVmcore } from '../sources/vmcore.js';
import type { VmallocArea } from './vmallocinfo.js';

/** include/linux/vmalloc.h */
const VM_ALLOC = 0x2;

export function vmapAreasFromDump(v: OpenVmcore): { areas: VmallocArea[]; warnings: string[] } {
  const { prog, types, syms } = v;
  const head = prog.vmcoreSymbol('vmap_area_list') ?? syms.addressOf('vmap_area_list');
  if (head === null) throw new MemleakError('E_KALLSYMS', 'no vmap_area_list symbol in VMCOREINFO or kallsyms', { file: prog.dump.path });
  const offList = BigInt(types.tryOffsetOf('vmap_area', 'list') ?? prog.info.offsets.get('vmap_area.list') ?? 40);
  const offStart = types.tryOffsetOf('vmap_area', 'va_start') ?? prog.info.offsets.get('vmap_area.va_start') ?? 0;
  const offVm = types.offsetOf('vmap_area', 'vm');
  const vmSize = types.sizeOf('vm_struct');
  const o = {
    size: types.offsetOf('vm_struct', 'size'),
    flags: types.offsetOf('vm_struct', 'flags'),
    nrPages: types.offsetOf('vm_struct', 'nr_pages'),
    caller: types.offsetOf('vm_struct', 'caller'),
  };
  const areas: VmallocArea[] = [];
  const warnings: string[] = [];
  const seen = new Set<bigint>();
  let node = prog.u64(head, 'vmap_area_list');
  while (node !== head) {
    if (seen.has(node) || seen.size > 10_000_000) {
      warnings.push(`vmap_area_list loops at ${hex(node)}: stopped`);
      break;
    }
    seen.add(node);
    const va = node - offList;
    const b = prog.read(va, Math.max(offVm, offStart) + 8);
    const next = prog.read(node, 8);
    if (!b || !next) {
      warnings.push(`vmap_area at ${hex(va)} is not in the dump: the list walk stopped there`);
      break;
    }
    const dv = new DataView(b.buffer, b.byteOffset);
    const vm = dv.getBigUint64(offVm, true);
    const start = dv.getBigUint64(offStart, true);
    // Busy areas with a vm_struct; free/lazy areas reuse the union for subtree_max_size (a small number).
    if (vm >= 0xffff800000000000n) {
      const s = prog.read(vm, vmSize);
      if (s) {
        const sv = new DataView(s.buffer, s.byteOffset);
        const flags = Number(sv.getBigUint64(o.flags, true) & 0xffffffffn);
        if (flags & VM_ALLOC) {
          const caller = sv.getBigUint64(o.caller, true);
          const sym = syms.lookup(caller);
          areas.push({
            start,
            size: Number(sv.getBigUint64(o.size, true)),
            caller: sym ? Kallsyms.format(sym) : hex(caller),
            pages: sv.getUint32(o.nrPages, true),
            kind: 'vmalloc',
          });
        }
      }
    }
    node = new DataView(next.buffer, next.byteOffset).getBigUint64(0, true);
  }
  return { areas, warnings };
}
