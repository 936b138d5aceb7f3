// Regression (found by profiling the long fuzz run, issue 9): the daemon's 1 MiB log_dump ring
// evicted its oldest line with Array.shift(), O(ring length) per line, so each logged line cost
// ~10 µs once the ring was full. A client streaming junk makes one "magic" line per 32 bytes:
// the logging alone took most of the daemon's CPU, and on a loaded machine renewals fell behind.
// Eviction must cost about what appending does, and the ring must still hold the newest 1 MiB.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DaemonLog } from '../../src/daemon/log.js';

// the daemon's own junk line: short lines mean more of them in the ring (over ~16 000 at 1 MiB,
// where V8 can no longer trim the array's front in place)
const MSG = 'ci 31 recv 32 magic 0 vs 4282010';

/** Microseconds per line for `n` lines logged into `log`. */
function perLine(log: DaemonLog, n: number, tag: string): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) log.error(`${MSG} ${tag}${i}`);
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

test('logging into a full ring costs about what logging into an empty one does', () => {
  let empty = Number.POSITIVE_INFINITY;
  let full = Number.POSITIVE_INFINITY;
  // the minimum of a few trials: what the code costs, not what the machine's load adds
  for (let trial = 0; trial < 3; trial++) {
    // 8 000 lines of ~70 bytes stay below 1 MiB: no eviction yet
    empty = Math.min(empty, perLine(new DaemonLog({ toStderr: false, logfilePriority: -1, logfileUseUtc: true }), 8000, 'e'));
    const log = new DaemonLog({ toStderr: false, logfilePriority: -1, logfileUseUtc: true });
    perLine(log, 20_000, 'fill');
    full = Math.min(full, perLine(log, 30_000, 'f'));
  }
  assert.ok(full < 4 * empty, `a line costs ${full.toFixed(2)} µs with a full ring, ${empty.toFixed(2)} µs with an empty one`);
});

test('the ring keeps the newest lines, whole, within 1 MiB', () => {
  const log = new DaemonLog({ toStderr: false, logfilePriority: -1, logfileUseUtc: true });
  for (let i = 0; i < 50_000; i++) log.error(`${MSG} n${i}`);
  const dump = log.dump().toString();
  assert.ok(dump.length <= 1024 * 1024 && dump.length > 1024 * 1024 - 200, `dump is ${dump.length} bytes`);
  const lines = dump.split('\n');
  assert.match(lines[lines.length - 1]!, / n49999$/);
  assert.match(lines[0]!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+ \[\d+\]: ci 31 recv 32 magic 0 vs 4282010 n\d+$/);
  // consecutive: nothing lost in the middle
  const first = Number(/ n(\d+)$/.exec(lines[0]!)?.[1]);
  assert.equal(lines.length, 50_000 - first);
});
