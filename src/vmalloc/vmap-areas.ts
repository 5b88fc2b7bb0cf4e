/**
 * vmalloc use by caller from a dump: every busy vmap_area, then va->vm->{addr, size, flags, nr_pages,
 * caller} (BTF). Only VM_ALLOC areas count, as /proc/vmallocinfo's "vmalloc" ones. Where the busy
 * areas are listed (busyAreaLists):
 * - up to 6.8: one global list, list_for_each_entry(va, &vmap_area_list, list); VMCOREINFO exports
 *   SYMBOL(vmap_area_list), OFFSET(vmap_area.va_start) and OFFSET(vmap_area.list).
 * - 6.9 (55c49fee57af "mm/vmalloc: remove vmap_area_list", d093602919ad "mm: vmalloc: remove global
 *   vmap_area_root rb-tree"): per-node lists, vmap_nodes[0 .. nr_vmap_nodes).busy.head, and VMCOREINFO
 *   no longer names any of it; vmap_nodes and nr_vmap_nodes are static (kallsyms with KALLSYMS_ALL).
 * Which one a kernel has is probed (the symbols), not inferred from a version.
 */
import { MemleakError } from '../errors.js';
import { hex } from '../util/hex.js';
import { Kallsyms } from '../kernel/kallsyms.js';
import type { Kernel } from '../kernel/kernel.js';
import type { VmallocArea } from '../check/vmallocinfo.js';

/** include/linux/vmalloc.h */
const VM_ALLOC = 0x2;

/** The list heads of busy vmap areas (see the file comment), with a name for messages. */
function busyAreaLists(v: Kernel): { head: bigint; what: string }[] {
  const { prog, types, syms } = v;
  const global = prog.vmcoreSymbol('vmap_area_list') ?? syms.addressOf('vmap_area_list');
  if (global !== null) return [{ head: global, what: 'vmap_area_list' }];
  const nodes = syms.addressOf('vmap_nodes');
  const nr = syms.addressOf('nr_vmap_nodes');
  if (nodes === null || nr === null) throw new MemleakError('E_KALLSYMS', 'neither vmap_area_list (up to 6.8) nor vmap_nodes/nr_vmap_nodes (6.9+) is in VMCOREINFO or kallsyms', { file: prog.dump.path });
  const n = Number(prog.u32(nr, 'nr_vmap_nodes'));
  if (n < 1 || n > 4096) throw new MemleakError('E_FORMAT', `nr_vmap_nodes is ${n}: not a node count`, { file: prog.dump.path });
  const base = prog.u64(nodes, 'vmap_nodes');
  const stride = BigInt(types.sizeOf('vmap_node'));
  const busyHead = BigInt(types.offsetOf('vmap_node', 'busy') + types.offsetOf('rb_list', 'head'));
  return Array.from({ length: n }, (_, i) => ({ head: base + BigInt(i) * stride + busyHead, what: `vmap_nodes[${i}].busy` }));
}

/** The VM_ALLOC areas, and which lists they came from (for the report's source line). */
export function vmapAreasFromDump(v: Kernel): { areas: VmallocArea[]; warnings: string[]; lists: string } {
  const { prog, types, syms } = v;
  const heads = busyAreaLists(v);
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
  for (const { head, what } of heads) {
    let node = prog.u64(head, what);
    while (node !== head) {
      if (seen.has(node) || seen.size > 10_000_000) {
        warnings.push(`${what} loops at ${hex(node)}: stopped`);
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
  }
  return { areas, warnings, lists: heads.length === 1 ? heads[0].what : `vmap_nodes[0..${heads.length - 1}].busy` };
}
