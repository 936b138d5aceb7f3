// Glue: a LockspaceView (what paxos leases need to know about other hosts) built from our own
// DeltaLease (for the disk and geometry) and the HostStateTracker fed by its renewals.
// The daemon keeps one per joined lockspace; the simulator can use it as is.
import { SanlkCode, SanlockError } from '../codes.js';
import type { Leader } from '../ondisk/leader.js';
import { type DeltaLease, readDeltaRecord } from './delta-lease.js';
import type { HostStateTracker } from './host-state.js';
import type { HostSnapshot, LockspaceView } from './paxos-lease.js';

/**
 * Views already made, per delta lease: a view holds no state of its own, and the daemon asks for
 * one per resource lease (10 000 held leases made 10 000 identical maps and closures).
 */
const views = new WeakMap<DeltaLease, { tracker: HostStateTracker; view: LockspaceView }>();

/** One lockspace: reads go to its disk; snapshots come from its tracker. */
export function lockspaceViewOf(delta: DeltaLease, tracker: HostStateTracker): LockspaceView {
  const known = views.get(delta);
  if (known && known.tracker === tracker) return known.view;
  const view = multiLockspaceView(new Map([[delta.spaceName, { delta, tracker }]]));
  views.set(delta, { tracker, view });
  return view;
}

/** Several joined lockspaces, looked up by the name a lease's leader carries (-241 if unknown). */
export function multiLockspaceView(spaces: Map<string, { delta: DeltaLease; tracker: HostStateTracker }>): LockspaceView {
  return {
    async readDeltaRecord(spaceName: string, hostId: number): Promise<Leader> {
      const ls = spaces.get(spaceName);
      if (!ls) throw new SanlockError(SanlkCode.SANLK_ACQUIRE_LOCKSPACE, `lockspace ${spaceName} not joined`);
      const g = await ls.delta.loadGeometry();
      const r = await readDeltaRecord(ls.delta.disk, ls.delta.offset, g, spaceName, hostId, ls.delta.ioTimeout * 1000, ls.delta.stats);
      return r.leader;
    },
    hostSnapshot(spaceName: string, hostId: number): HostSnapshot | undefined {
      return spaces.get(spaceName)?.tracker.slot(hostId);
    },
  };
}
