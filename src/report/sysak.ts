/** The original sysak memleak's Chinese report (see shared/reference/SYSAK.md), for users and scripts that read it. */
import type { SlabReport } from '../slab/report.js';

export function renderSysak(r: SlabReport): string {
  const o: string[] = [];
  o.push('未释放内存详细列表:');
  for (const u of r.unfreed) {
    o.push(`${u.comm}:${u.pid}  ${u.function}  ptr=${u.ptr} mark ${u.marked ? 1 : 0} delta = ${u.age.toFixed(3)}`);
  }
  o.push('未释放内存汇总:');
  o.push('次数    标记次数       函数');
  for (const c of r.callSites) o.push(`${String(c.unfreed).padEnd(9)}${String(c.marked).padEnd(15)}${c.function}`);
  o.push('泄漏slab 基本信息:');
  const total = (r.cache.allocated ?? r.scan.objectsScanned) * r.cache.objectSize;
  o.push(`slab: ${r.cache.name} 总大小: ${total}`);
  const top = r.clusters[0];
  if (r.verdict) {
    o.push(`疑似泄漏object: ${r.verdict.object} 相似object数量: ${r.verdict.similarObjects}`);
    o.push(`疑似泄漏函数: ${r.verdict.function}`);
    // Further leakers below the original's layout, in the same two lines each.
    for (const l of r.verdict.leakers.slice(1)) {
      o.push(`疑似泄漏object: ${l.object} 相似object数量: ${l.similarObjects}`);
      o.push(`疑似泄漏函数: ${l.function}`);
    }
  } else {
    if (top) o.push(`疑似泄漏object: ${top.object} 相似object数量: ${top.count}`);
    o.push('疑似泄漏函数: 无');
  }
  return o.join('\n') + '\n';
}
