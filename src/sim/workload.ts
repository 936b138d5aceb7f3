// What a simulated client does next. The world executes the actions (and owns the ghost state
// the checker sees); this file only decides, from the client's own view and its random stream.
//
// A client thinks for 0–2 s between actions. Holding something, it gives it back half the time
// (a quarter of those as a convert EX↔SH when SH is enabled and its token agrees with what it
// believes it holds); otherwise it goes for a resource it does not hold: 10 % a FORCE request
// (real engine), else an acquire, SH 40 % of the time when SH is enabled. Once the run drains,
// it only releases.
import type { Mode } from './engines.js';
import type { Xoshiro128 } from './prng.js';

export type Action =
  | { kind: 'release'; res: number }
  | { kind: 'convert'; res: number; to: Mode }
  | { kind: 'request'; res: number }
  | { kind: 'acquire'; res: number; mode: Mode }
  | { kind: 'idle' }
  | { kind: 'stop' };

export interface ClientView {
  /** resource index → mode the client believes it holds */
  held: ReadonlyMap<number, Mode>;
  /** resources the daemon is still working on for this client (e.g. a release after a kill) */
  busy: ReadonlySet<number>;
  /** mode of the client's token for a resource (what the daemon says it holds) */
  tokenMode(res: number): Mode | undefined;
  resources: number;
  shared: boolean;
  requests: boolean;
  draining: boolean;
}

export const THINK_MS_MAX = 2000;

export function nextAction(rng: Xoshiro128, v: ClientView): Action {
  const held = [...v.held.keys()].sort((a, b) => a - b);
  if (v.draining) return held.length === 0 ? { kind: 'stop' } : { kind: 'release', res: held[0]! };
  if (held.length > 0 && rng.chance(0.5)) {
    const res = rng.pick(held);
    const mine = v.held.get(res)!;
    // after a failed EX→SH the client treats the lease as SH while its token may still be EX:
    // such a lease is only released
    if (v.shared && v.tokenMode(res) === mine && rng.chance(0.25)) return { kind: 'convert', res, to: mine === 'EX' ? 'SH' : 'EX' };
    return { kind: 'release', res };
  }
  const free: number[] = [];
  for (let i = 0; i < v.resources; i++) if (!v.held.has(i) && !v.busy.has(i)) free.push(i);
  if (free.length === 0) return { kind: 'idle' };
  const res = rng.pick(free);
  if (v.requests && rng.chance(0.1)) return { kind: 'request', res };
  return { kind: 'acquire', res, mode: v.shared && rng.chance(0.4) ? 'SH' : 'EX' };
}
