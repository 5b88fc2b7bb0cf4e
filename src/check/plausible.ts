/** Which other kinds of leak are worth analysing when the kind the check chose names no leaker. */
import { pileupText, STEADY_MIN_BYTES, type CheckResult, type LeakKind } from './leak.js';

/** Growth that makes a kind worth analysing after the chosen one found nothing (the steady rule's step). */
export const PLAUSIBLE_GROWTH_BYTES = STEADY_MIN_BYTES;

/**
 * The kinds still worth a look when the chosen one names no leaker: other kinds that passed a rule,
 * then those that grew by at least PLAUSIBLE_GROWTH_BYTES without passing one (a short window, a small
 * guest), then slab when a cache stands far above its peers (evidence a window may not show as growth).
 */
export function otherPlausibleKinds(check: CheckResult, done: LeakKind): { kind: LeakKind; why: string }[] {
  const out: { kind: LeakKind; why: string }[] = [];
  const others = check.kinds.filter((k) => k.kind !== done).sort((a, b) => (b.growth ?? 0) - (a.growth ?? 0));
  for (const k of others) if (k.leaking) out.push({ kind: k.kind, why: `${k.kind}: ${k.why}` });
  for (const k of others) if (!k.leaking && (k.growth ?? 0) >= PLAUSIBLE_GROWTH_BYTES) out.push({ kind: k.kind, why: `${k.kind} grew too: ${k.why}` });
  const p = check.decision.pileup;
  if (p && done !== 'slab' && !out.some((o) => o.kind === 'slab')) out.push({ kind: 'slab', why: `standing pile-up: ${pileupText(p)}` });
  return out;
}
