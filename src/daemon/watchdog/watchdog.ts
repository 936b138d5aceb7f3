// The host watchdog as one lockspace sees it.
//
// Safety rule: once our delta lease has not been renewed for 8·io_timeout (last_success +
// 8·io_timeout, "the expiry"), other hosts start counting host_dead_seconds = 8·io_timeout + 60
// towards taking our leases. The watchdog must therefore never be kept from firing past the
// expiry. wdmd 3.8.5 (measured on the real binary) pets at a test only if now + 10 (its test
// interval) < expiry for every client; otherwise it logs "test warning"/"test failed", closes
// the device without the magic char and retests every second, reopening and petting once the
// tests pass again. The device fires 60 s (WATCHDOG_FIRE_TIMEOUT) after the last pet, so before
// other hosts may proceed, even if this daemon hangs or its kill sequence cannot get rid of a
// lease holder. Device mode applies the same rule with its own interval. Consequence: with
// wdmd, io_timeout 1 (expiry = renewal + 8) is never petted; io_timeout >= 2 is needed. expiryFor()
// asserts the expiry is derived only from a real renewal timestamp (never in the future,
// never older than the last one) plus 8·io_timeout.
//
// Daemon sequence per lockspace (mirrors sanlock 3.8.5):
//   const wd = createWatchdog(mode, opts)   // mode from -w: 0 → 'none', else 'wdmd' (or 'device')
//   await wd.connect()                      // before the delta acquire; throws SanlockError(-203)
//   ...delta acquire succeeded with timestamp ts...
//   await wd.arm({ spaceName, hostId, ioTimeout, renewalTs: ts })   // throws SanlockError(-203)
//   ...after every successful renewal with timestamp ts: await wd.refresh(ts)
//   ...removal, once no client holds a lease of the space: await wd.disarm()
//   ...lockspace thread exit: await wd.close()
import { DeviceWatchdog, type DeviceOptions } from './device.js';
import type { LockspaceWatchdog, WatchdogLog, WatchdogMode } from './common.js';
import { NoWatchdog } from './none.js';
import { WdmdWatchdog, type WdmdOptions } from './wdmd.js';

export * from './common.js';
export { DeviceHub, DeviceWatchdog, type DeviceOps, type DeviceOptions, nativeDeviceOps } from './device.js';
export { NoWatchdog } from './none.js';
export { WdmdWatchdog, type WdmdOptions, type WdmdStatus, WdmdCmd, encodeWdmdHeader, decodeWdmdHeader, WDMD_HEADER_SIZE } from './wdmd.js';

export interface WatchdogOptions {
  log?: WatchdogLog;
  /** wdmd mode: socket path (default env SANLOCK_TS_WDMD_SOCK, else /run/wdmd/wdmd.sock). */
  wdmdSocketPath?: string;
  wdmdReplyTimeoutMs?: number;
  /** device mode: device path (default env SANLOCK_TS_WATCHDOG_DEV, else /dev/watchdog). */
  devicePath?: string;
  keepaliveIntervalMs?: number;
}

/**
 * The mode for sanlock's use_watchdog setting: 0 → 'none'; otherwise wdmd, unless env
 * SANLOCK_TS_WATCHDOG=device asks this daemon to drive the device itself.
 */
export function watchdogModeFor(useWatchdog: number, env: NodeJS.ProcessEnv = process.env): WatchdogMode {
  if (!useWatchdog) return 'none';
  return env.SANLOCK_TS_WATCHDOG === 'device' ? 'device' : 'wdmd';
}

export function createWatchdog(mode: WatchdogMode, opts: WatchdogOptions = {}): LockspaceWatchdog {
  switch (mode) {
    case 'wdmd': {
      const o: WdmdOptions = { log: opts.log, socketPath: opts.wdmdSocketPath, replyTimeoutMs: opts.wdmdReplyTimeoutMs };
      return new WdmdWatchdog(o);
    }
    case 'device': {
      const o: DeviceOptions = { log: opts.log, devicePath: opts.devicePath, keepaliveIntervalMs: opts.keepaliveIntervalMs };
      return new DeviceWatchdog(o);
    }
    case 'none':
      return new NoWatchdog();
  }
}
