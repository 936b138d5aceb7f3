// Typed wrappers for the N-API addon in native/ (built by `npm ci` through the package's
// "install" script; loaded by src/storage/native-io.ts). Only what Node cannot do lives there.
import assert from 'node:assert';
import type { Socket } from 'node:net';
import { loadNativeAddon } from '../storage/native-io.js';

interface NativeAddon {
  peerCred(fd: number): { pid: number; uid: number; gid: number } | number;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, sig: number): number;
  killPid(pid: number, sig: number): number;
  closeFd(fd: number): number;
  wdSetTimeout(fd: number, seconds: number): number;
  wdKeepalive(fd: number): number;
  lockFile(fd: number): number;
  mlockAll(level: number): number;
  setSchedRR(): number;
  syslogOpen(ident: string, facility: number): number;
  syslogWrite(level: number, msg: string): number;
  syslogClose(waitMs: number): number;
  sdNotify(path: string, message: string): number;
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  addon ??= loadNativeAddon() as NativeAddon;
  return addon;
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

/** The kernel fd behind a connected net.Socket (unix sockets on Linux only). */
export function socketFd(sock: Socket): number {
  const handle = (sock as unknown as { _handle?: { fd?: number } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new Error('cannot get the file descriptor of this socket (not a connected unix socket on Linux?)');
  }
  return fd;
}

/** SO_PEERCRED of a connected unix socket fd; throws with errno on failure. */
export function peerCred(fd: number): PeerCred {
  const r = native().peerCred(fd);
  if (typeof r === 'number') {
    assert(r < 0);
    throw Object.assign(new Error(`SO_PEERCRED failed: ${r}`), { errno: r });
  }
  return r;
}

let pidfdSupported: boolean | undefined;

/**
 * A handle on a process that can be signalled safely: with pidfd the kernel guarantees the
 * signal reaches the process that existed when the handle was opened (never a recycled pid).
 * Kernels without pidfd_open (ENOSYS) fall back to kill(2).
 */
export class ProcessHandle {
  private pidfd: number;

  private constructor(readonly pid: number, pidfd: number) {
    this.pidfd = pidfd;
  }

  /** Opens a handle; returns -errno (e.g. -ESRCH) when the process no longer exists. */
  static open(pid: number): ProcessHandle | number {
    assert(Number.isInteger(pid) && pid > 0, `bad pid ${pid}`);
    if (pidfdSupported !== false) {
      const fd = native().pidfdOpen(pid);
      if (fd >= 0) {
        pidfdSupported = true;
        return new ProcessHandle(pid, fd);
      }
      if (fd !== -38 /* ENOSYS */ && fd !== -1 /* EPERM in some sandboxes */) return fd;
      pidfdSupported = false;
    }
    return new ProcessHandle(pid, -1);
  }

  get usesPidfd(): boolean {
    return this.pidfd >= 0;
  }

  /** Sends sig; 0 or -errno (-ESRCH once the process has exited). */
  signal(sig: number): number {
    if (this.pidfd >= 0) return native().pidfdSendSignal(this.pidfd, sig);
    return native().killPid(this.pid, sig);
  }

  close(): void {
    if (this.pidfd >= 0) {
      native().closeFd(this.pidfd);
      this.pidfd = -1;
    }
  }
}

/** WDIOC_SETTIMEOUT on an open watchdog device fd: the accepted timeout or -errno. */
export function watchdogSetTimeout(fd: number, seconds: number): number {
  return native().wdSetTimeout(fd, seconds);
}

/** WDIOC_KEEPALIVE on an open watchdog device fd: 0 or -errno. */
export function watchdogKeepalive(fd: number): number {
  return native().wdKeepalive(fd);
}

/** F_SETLK write lock on an open fd: 0, or -errno (-EAGAIN/-EACCES when another process holds it). */
export function lockFile(fd: number): number {
  return native().lockFile(fd);
}

/** mlockall per sanlock's mlock_level (0 none, 1 current, 2 current|future): 0 or -errno. */
export function mlockAll(level: number): number {
  return native().mlockAll(level);
}

/** SCHED_RR at max priority for this process: 0 or -errno. */
export function setSchedRR(): number {
  return native().setSchedRR();
}

/** syslog facility LOG_DAEMON (3 << 3), the one sanlock uses. */
export const LOG_FACILITY_DAEMON = 3 << 3;

/**
 * openlog(ident, LOG_CONS|LOG_PID, facility) and a writer thread: syslog() blocks when the syslog
 * daemon does, which must never stall the event loop. Idempotent.
 */
export function syslogOpen(ident: string, facility = LOG_FACILITY_DAEMON): void {
  native().syslogOpen(ident, facility);
}

/** Queues one message: 0 queued, 1 dropped (4096 already queued; the next message reports the count), -EBADF when not open. */
export function syslogWrite(level: number, msg: string): number {
  assert(Number.isInteger(level) && level >= 0 && level <= 7, `bad syslog level ${level}`);
  return native().syslogWrite(level, msg);
}

/** Stops the writer after it has sent what is queued, waiting at most waitMs; returns entries left unsent. */
export function syslogClose(waitMs = 1000): number {
  return native().syslogClose(waitMs);
}

/** One datagram to a systemd notify socket ('@name' = abstract): bytes sent or -errno. */
export function sdNotify(path: string, message: string): number {
  return native().sdNotify(path, message);
}
