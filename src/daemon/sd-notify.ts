// systemd's notify protocol (sd_notify(3)), for the unit's Type=notify and WatchdogSec=: one
// datagram per state change to $NOTIFY_SOCKET. READY=1 is sent once the client socket is
// listening, so units ordered after sanlock-ts find the socket there; WATCHDOG=1 every half
// WATCHDOG_USEC from the event loop, so systemd notices a daemon whose loop is stuck.
import type { DaemonLog } from './log.js';
import { sdNotify } from './native.js';

export interface SystemdNotifier {
  /** the watchdog ping period in ms, 0 when systemd asked for none */
  readonly watchdogMs: number;
  ready(status: string): void;
  status(status: string): void;
  stopping(): void;
  close(): void;
}

/** The ping period for WATCHDOG_USEC / WATCHDOG_PID as sd_watchdog_enabled(3) reads them; 0 = off. */
export function watchdogPeriodMs(env: NodeJS.ProcessEnv, pid = process.pid): number {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isInteger(usec) || usec <= 0) return 0;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return 0;
  return Math.max(1, Math.floor(usec / 2000));
}

/** A notifier for $NOTIFY_SOCKET, or undefined when not started by systemd with Type=notify. */
export function systemdNotifier(log: DaemonLog, env: NodeJS.ProcessEnv = process.env): SystemdNotifier | undefined {
  const path = env.NOTIFY_SOCKET;
  if (!path) return undefined;
  const send = (msg: string): void => {
    const rv = sdNotify(path, msg);
    if (rv < 0) log.error(`sd_notify ${path} "${msg.split('\n')[0]}" failed: errno ${-rv}`);
  };
  const watchdogMs = watchdogPeriodMs(env);
  let timer: NodeJS.Timeout | undefined;
  return {
    watchdogMs,
    ready(status: string) {
      send(`READY=1\nMAINPID=${process.pid}\nSTATUS=${status}`);
      if (watchdogMs > 0 && !timer) {
        timer = setInterval(() => send('WATCHDOG=1'), watchdogMs);
        timer.unref();
        log.info(`systemd watchdog ping every ${watchdogMs} ms`);
      }
    },
    status(status: string) {
      send(`STATUS=${status}`);
    },
    stopping() {
      send('STOPPING=1');
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
