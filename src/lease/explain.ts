// Turns a result code into what a person needs: the number and name (so it can be searched
// and matched against sanlock's own logs), one sentence about this very failure (which lease,
// which host, how long ago it renewed), and what it means / what to do. Pure: no I/O, no clock.
// The wording follows spec/protocol.md §7 and what the real 3.8.5 daemon was seen to return
// (design/testing-with-real-sanlock.md).
//
// API:
//   explain(code, ctx?)        → { code, name, message, details }
//   formatExplained(e)         → "message\n  details" (what the CLIs print)
//   explainError(err, ctx?)    → explain() of any thrown value (SanlockError's code, else -201)
//   explainedCodes()           → every code with a specific sentence (for tests and docs)
import { codeName, Errno, SanlkCode, SanlockError, sanlkStrerror } from '../codes.js';

/** The leader fields a sentence may quote (a decoded Leader satisfies it). */
export interface LeaderSummary {
  ownerId: number;
  ownerGeneration: number;
  lver: number;
  timestamp: number;
}

/** What is known about the failure; every field is optional and only sharpens the sentence. */
export interface ExplainContext {
  lockspace?: string;
  resource?: string;
  /** host_id involved: ours for a join/renew, the requested one for a host_id error */
  hostId?: number;
  path?: string;
  offset?: number;
  /** the leader seen on disk */
  leader?: LeaderSummary;
  /** lver the caller asked for */
  lver?: number;
  /** seconds since the owner's delta lease was last seen to change */
  renewedSecondsAgo?: number;
  ioTimeout?: number;
  maxHosts?: number;
  sectorSize?: number;
  alignSize?: number;
  pid?: number;
  /** what was expected / found on disk (a name, a version...) */
  expected?: string;
  found?: string;
  /** the operation that failed: "acquire", "add_lockspace", "open"... */
  operation?: string;
}

export interface Explained {
  code: number;
  /** SANLK_* or errno name, or the number as text when unknown */
  name: string;
  /** `<code> <NAME>: <sentence>` */
  message: string;
  /** what it means for the user and what to do */
  details: string;
}

type Sentence = (c: ExplainContext) => { what: string; todo: string };

function lease(c: ExplainContext): string {
  if (c.resource && c.lockspace) return `lease ${c.resource} (lockspace ${c.lockspace})`;
  if (c.resource) return `lease ${c.resource}`;
  return 'the lease';
}

function space(c: ExplainContext): string {
  return c.lockspace ? `lockspace ${c.lockspace}` : 'the lockspace';
}

function where(c: ExplainContext): string {
  if (c.path === undefined) return '';
  return c.offset !== undefined ? ` at ${c.path}:${c.offset}` : ` at ${c.path}`;
}

function owner(c: ExplainContext): string {
  const l = c.leader;
  if (!l || l.ownerId === 0) return 'another host';
  return `host ${l.ownerId} (generation ${l.ownerGeneration})`;
}

function renewed(c: ExplainContext): string {
  if (c.renewedSecondsAgo === undefined) return '';
  const s = Math.max(0, Math.round(c.renewedSecondsAgo));
  return `, which renewed ${s} s ago`;
}

function hostIdText(c: ExplainContext): string {
  return c.hostId !== undefined ? `host_id ${c.hostId}` : 'the host_id';
}

const ioAdvice =
  'check the storage path (multipath, SAN, NFS server) and the kernel log; sanlock retries renewals, ' +
  'but a lockspace whose renewals keep failing for 8 × io_timeout is failed and its lease holders are killed';

const sentences: Record<number, Sentence> = {
  [SanlkCode.SANLK_ERROR]: (c) => ({
    what: `${c.operation ?? 'the operation'} failed for an unspecified reason`,
    todo: 'look at the daemon log (sanlock-ts client log_dump) for the step that failed',
  }),
  [SanlkCode.SANLK_AIO_TIMEOUT]: (c) => ({
    what: `storage I/O${where(c)} did not complete within io_timeout${c.ioTimeout ? ` (${c.ioTimeout} s)` : ''}`,
    todo: `the disk is slow or hung; ${ioAdvice}`,
  }),
  [SanlkCode.SANLK_WD_ERROR]: () => ({
    what: 'the watchdog could not be armed for this lockspace (wdmd not reachable or refused)',
    todo: 'start wdmd (systemctl start wdmd) or run the daemon with -w 0 when no watchdog is wanted; leases are refused without it',
  }),
  [SanlkCode.SANLK_DBLOCK_READ]: (c) => ({
    what: `reading the paxos blocks of ${lease(c)} failed on a majority of its disks`,
    todo: `no ballot can run without them; ${ioAdvice}`,
  }),
  [SanlkCode.SANLK_DBLOCK_WRITE]: (c) => ({
    what: `writing this host's paxos block of ${lease(c)} failed on a majority of its disks`,
    todo: `the acquire was abandoned; ${ioAdvice}`,
  }),
  [SanlkCode.SANLK_DBLOCK_LVER]: (c) => ({
    what: `${lease(c)} was acquired by ${owner(c)} in a newer ballot while this host was voting`,
    todo: 'another host won the race; retry later or ask the owner to release it (request)',
  }),
  [SanlkCode.SANLK_DBLOCK_MBAL]: (c) => ({
    what: `${lease(c)} is being acquired by ${owner(c)} in the same ballot (a higher ballot number was seen)`,
    todo: 'two hosts raced for the lease and the other one is ahead; retry after a short random delay',
  }),
  [SanlkCode.SANLK_DBLOCK_CHECKSUM]: (c) => ({
    what: `a paxos block of ${lease(c)}${where(c)} has a bad checksum`,
    todo:
      'the lease area is corrupt or was read with the wrong sector size (a 4K lease used through a 512-byte lockspace gives this); ' +
      'check -Z/-A against how the lease was initialised',
  }),
  [SanlkCode.SANLK_LEADER_READ]: (c) => ({
    what: `reading the leader record of ${lease(c)} failed on a majority of its disks`,
    todo: ioAdvice,
  }),
  [SanlkCode.SANLK_LEADER_WRITE]: (c) => ({
    what: `writing the leader record of ${lease(c)} failed on a majority of its disks`,
    todo: ioAdvice,
  }),
  [SanlkCode.SANLK_LEADER_DIFF]: (c) => ({
    what: `the disks of ${lease(c)} hold different leader records and no majority agrees`,
    todo: 'one replica is stale or damaged; check that every disk path of the lease names the right device',
  }),
  [SanlkCode.SANLK_LEADER_MAGIC]: (c) => ({
    what: `there is no ${c.resource ? 'resource lease' : c.lockspace ? `lockspace ${c.lockspace}` : 'lease'}${where(c)}${c.found ? ` (found ${c.found})` : ''}`,
    todo:
      'the area was never initialised, was cleared, or the path/offset is wrong; ' +
      'initialise it with `sanlock-ts direct init -s/-r` or correct the offset (lease areas are aligned to 1 MiB, or 1-8 MiB for 4K sectors)',
  }),
  [SanlkCode.SANLK_LEADER_VERSION]: (c) => ({
    what: `the lease${where(c)} has an on-disk format version this sanlock does not know${c.found ? ` (${c.found})` : ''}`,
    todo: 'it was written by an incompatible sanlock version; re-initialise it only if nothing uses it',
  }),
  [SanlkCode.SANLK_LEADER_SECTORSIZE]: (c) => ({
    what: `the lease${where(c)} records a sector size${c.found ? ` of ${c.found}` : ''} that does not match the one in use`,
    todo: 'use the same -Z sector size (512 or 4096) for every lease of a lockspace as when it was initialised',
  }),
  [SanlkCode.SANLK_LEADER_LOCKSPACE]: (c) => ({
    what: c.resource
      ? `the lease${where(c)} belongs to ${c.found ? `lockspace ${c.found}` : 'another lockspace'}, not ${c.expected ?? c.lockspace ?? 'the one given'}`
      : `the lockspace${where(c)} is named ${c.found ?? '(another name)'}, not ${c.expected ?? c.lockspace ?? 'the one given'}`,
    todo: 'the lockspace name or the path/offset is wrong; `sanlock-ts direct read_leader` shows what is there',
  }),
  [SanlkCode.SANLK_LEADER_RESOURCE]: (c) => ({
    what: `the lease${where(c)} is for resource ${c.found ?? '(another name)'}, not ${c.expected ?? c.resource ?? 'the one given'}`,
    todo: 'the resource name or the offset is wrong; `sanlock-ts direct dump PATH` lists the leases on a device',
  }),
  [SanlkCode.SANLK_LEADER_NUMHOSTS]: (c) => ({
    what: `${lease(c)} was initialised for fewer hosts than ${hostIdText(c)}`,
    todo: 'use a host_id within the lease\'s num_hosts, or re-initialise the lease while it is not held',
  }),
  [SanlkCode.SANLK_LEADER_CHECKSUM]: (c) => ({
    what: `the leader record${where(c)} has a bad checksum`,
    todo: 'the area is damaged or was overwritten by something else; do not re-initialise a lease that may be held',
  }),
  [SanlkCode.SANLK_ADDLS_SIZES]: (c) => ({
    what: `the sector size / align size pair${c.sectorSize ? ` ${c.sectorSize}/${c.alignSize ?? '?'}` : ''} is not one sanlock supports`,
    todo: 'valid pairs are 512/1M, 4K/1M, 4K/2M, 4K/4M and 4K/8M',
  }),
  [SanlkCode.SANLK_ADDLS_INVALID_HOSTID]: (c) => ({
    what: `${hostIdText(c)} is larger than the lockspace allows${c.maxHosts ? ` (max_hosts ${c.maxHosts})` : ''}`,
    todo: 'pick a host_id from 1 to max_hosts (2000 for 512/1M, 250 for 4K/1M, ...)',
  }),
  [SanlkCode.SANLK_ACQUIRE_LVER]: (c) => ({
    what: `${lease(c)} is at version ${c.leader?.lver ?? '(newer)'}, not the lver ${c.lver ?? 'given'}`,
    todo: 'the lease changed hands since that lver was recorded; acquire without :lver or with the current one',
  }),
  [SanlkCode.SANLK_ACQUIRE_LOCKSPACE]: (c) => ({
    what: `${lease(c)} belongs to ${space(c)}, which this host has not joined`,
    todo: 'add the lockspace first (sanlock-ts client add_lockspace -s ...)',
  }),
  [SanlkCode.SANLK_ACQUIRE_IDDISK]: (c) => ({
    what: `the delta lease of the owner in ${space(c)} could not be read`,
    todo: `the owner's liveness cannot be checked; ${ioAdvice}`,
  }),
  [SanlkCode.SANLK_ACQUIRE_IDLIVE]: (c) => ({
    what: `${lease(c)} is held by ${owner(c)}${renewed(c)}`,
    todo:
      'the owner is alive (it keeps renewing its delta lease), so the lease cannot be taken; ' +
      'wait for it to be released, or ask for it with `sanlock-ts client request -r RES:lver -f 1`',
  }),
  [SanlkCode.SANLK_ACQUIRE_OWNED]: (c) => ({
    what: `${lease(c)} was acquired by ${owner(c)} in another ballot while this host was trying`,
    todo: 'another host won; retry later',
  }),
  [SanlkCode.SANLK_ACQUIRE_OTHER]: (c) => ({
    what: `${lease(c)} was committed by ${owner(c)} just before this host's commit`,
    todo: 'a race with another acquirer; retry later',
  }),
  [SanlkCode.SANLK_ACQUIRE_SHRETRY]: (c) => ({
    what: `a shared acquire of ${lease(c)} kept colliding with ${owner(c)} taking it briefly`,
    todo: 'another host is converting or acquiring; retry the shared acquire',
  }),
  [SanlkCode.SANLK_ACQUIRE_OWNED_RETRY]: (c) => ({
    what: `${lease(c)} is owned by ${owner(c)}, whose liveness is not yet known${renewed(c)}`,
    todo: 'acquired with OWNER_NOWAIT: retry after the owner has been watched for a while (up to 8 × io_timeout + 60 s if it died)',
  }),
  [SanlkCode.SANLK_RELEASE_LVER]: (c) => ({
    what: `${lease(c)} changed version on disk (now ${c.leader?.lver ?? '?'}) since this host acquired it`,
    todo: 'another host took the lease over (this host was probably considered dead); stop using the resource',
  }),
  [SanlkCode.SANLK_RELEASE_OWNER]: (c) => ({
    what: `${lease(c)} is now owned by ${owner(c)}, not by this host`,
    todo: 'the lease was taken over; stop using the resource and check why this host lost its lockspace',
  }),
  [SanlkCode.SANLK_RENEW_OWNER]: (c) => ({
    what: `the delta lease of ${hostIdText(c)} in ${space(c)} is now owned by another host`,
    todo: 'two hosts use the same host_id; give every host a unique host_id. The lockspace has failed on this host',
  }),
  [SanlkCode.SANLK_RENEW_DIFF]: (c) => ({
    what: `the delta lease of ${hostIdText(c)} in ${space(c)} was changed on disk by someone else`,
    todo: 'another host (or a stray init) wrote this host_id\'s record; the lockspace has failed on this host',
  }),
  [SanlkCode.SANLK_HOSTID_BUSY]: (c) => ({
    what: `${hostIdText(c)} in ${space(c)} is in use by another live host${c.found ? ` (${c.found})` : ''}${renewed(c)}`,
    todo: 'pick a free host_id (sanlock-ts cluster status -s ... shows which are live), or wait until that host leaves',
  }),
  [SanlkCode.SANLK_REQUEST_MAGIC]: (c) => ({
    what: `the request record of ${lease(c)} is not valid`,
    todo: 'the lease area is damaged or not a sanlock resource lease',
  }),
  [SanlkCode.SANLK_REQUEST_VERSION]: (c) => ({
    what: `the request record of ${lease(c)} has an unknown version`,
    todo: 'it was written by an incompatible sanlock version',
  }),
  [SanlkCode.SANLK_REQUEST_OLD]: (c) => ({
    what: `a request for ${lease(c)} with a newer lver is already recorded`,
    todo: 'the pending request stands; repeat it with the current lver only if it should be replaced',
  }),
  [SanlkCode.SANLK_REQUEST_LVER]: (c) => ({
    what: `the lver requested for ${lease(c)} is older than its current version${c.leader ? ` ${c.leader.lver}` : ''}`,
    todo: 'read the lease (sanlock-ts cluster status -r ...) and request the current lver + 1',
  }),
  [SanlkCode.SANLK_RINDEX_MAGIC]: (c) => ({
    what: `there is no resource index${where(c)}`,
    todo: 'format it with `sanlock-ts direct format -x` or correct the rindex offset',
  }),
  [SanlkCode.SANLK_RINDEX_VERSION]: (c) => ({
    what: `the resource index${where(c)} has an unknown format version`,
    todo: 'it was written by an incompatible sanlock version',
  }),
  [SanlkCode.SANLK_RINDEX_LOCKSPACE]: (c) => ({
    what: `the resource index${where(c)} belongs to ${c.found ? `lockspace ${c.found}` : 'another lockspace'}, not ${c.lockspace ?? 'the one given'}`,
    todo: 'use the lockspace name the index was formatted with',
  }),
  [SanlkCode.SANLK_RINDEX_OFFSET]: (c) => ({
    what: `the resource index or entry offset${c.offset !== undefined ? ` ${c.offset}` : ''} does not match what is on disk`,
    todo: 'rindex and resource offsets must be multiples of the align size and match the index header',
  }),
  [SanlkCode.SANLK_RINDEX_DIFF]: (c) => ({
    what: `the resource name and offset given disagree with the index entry${c.found ? ` (${c.found})` : ''}`,
    todo: 'look the entry up by name only (`lookup -x ... -e NAME`) to see its real offset',
  }),

  // Negated errnos: their sanlock meaning depends on the request, so each sentence names the
  // usual causes seen with 3.8.5 rather than the C library's generic text.
  [-Errno.EPERM]: (c) => ({
    what: `${lease(c)} is not held by this process${c.pid !== undefined ? ` (pid ${c.pid})` : ''}`,
    todo: 'release/convert only leases the process acquired; `sanlock-ts client status` lists what each pid holds',
  }),
  [-Errno.ENOENT]: (c) => ({
    what: c.path !== undefined && c.operation === 'open'
      ? `${c.path} does not exist`
      : `${c.resource ? lease(c) : space(c)} is not known here (not joined / not held / no such entry)`,
    todo: c.path !== undefined && c.operation === 'open'
      ? 'check the path in the LOCKSPACE/RESOURCE string (use an absolute path for the daemon)'
      : 'add the lockspace or acquire the lease first, or check the name',
  }),
  [-Errno.ESRCH]: (c) => ({
    what: `process ${c.pid ?? '(given)'} is not registered with the daemon`,
    todo: 'the process must connect and register (sanlock_register) before leases can be acquired for it',
  }),
  [-Errno.EIO]: (c) => ({
    what: `an I/O error occurred${where(c)}`,
    todo: ioAdvice,
  }),
  [-Errno.E2BIG]: () => ({
    what: 'too many resources in one request (at most 8) or an LVB larger than a sector',
    todo: 'split the acquire into several calls or shorten the LVB',
  }),
  [-Errno.EBADF]: (c) => ({
    what: `the file descriptor or device${where(c)} is not usable`,
    todo: 'check that the path names a regular file or block device open for read/write',
  }),
  [-Errno.EAGAIN]: (c) => ({
    what: c.resource
      ? `${lease(c)} has live shared (SH) holders on other hosts, so it cannot be held exclusively now`
      : `${space(c)} is busy (being removed, or host states not ready yet after joining)`,
    todo: c.resource ? 'retry once the SH holders release, or acquire it shared' : 'retry in a few seconds',
  }),
  [-Errno.ENOMEM]: () => ({
    what: 'the daemon ran out of memory or of client slots',
    todo: 'check the daemon\'s limits (max clients 1000) and system memory',
  }),
  [-Errno.EACCES]: (c) => ({
    what: `permission denied${where(c)}`,
    todo: 'the daemon user (-U/-G) needs read/write access to the lease devices and the run directory',
  }),
  [-Errno.EBUSY]: (c) => ({
    what: c.resource
      ? `${lease(c)} is busy: another acquire of it is in progress here, or the target process is being killed`
      : `${space(c)} still has leases held or a command in progress`,
    todo: c.resource ? 'retry after the other request finishes' : 'release the leases (or use rem_lockspace without -u) and retry',
  }),
  [-Errno.EEXIST]: (c) => ({
    what: c.resource
      ? `${lease(c)} is already held on this host${c.pid !== undefined ? ` (pid ${c.pid})` : ''}`
      : `${space(c)} is already joined with this host_id`,
    todo: 'nothing to do if that is the intended holder; otherwise release it first',
  }),
  [-Errno.ENODEV]: (c) => ({
    what: `the storage${where(c)} cannot be opened (missing path or not a file/device)`,
    todo: 'check the path and that the daemon can open it with O_DIRECT (not on tmpfs)',
  }),
  [-Errno.EINVAL]: (c) => ({
    what: `an argument is invalid${c.found ? `: ${c.found}` : ''}`,
    todo:
      'check the LOCKSPACE (name:host_id:path:offset) / RESOURCE (lockspace:name:path:offset) strings; ' +
      'host_id must be 1..max_hosts, names at most 48 bytes',
  }),
  [-Errno.ENOTTY]: (c) => ({
    what: `the process${c.pid !== undefined ? ` ${c.pid}` : ''} exited while its acquire was running; the lease was released again`,
    todo: 'keep the process alive until the acquire returns',
  }),
  [-Errno.ENOSPC]: (c) => ({
    what: `${space(c)} is not joined on this host (or has failed and is being removed)`,
    todo: 'add the lockspace (client add_lockspace) and wait for the join to finish before acquiring',
  }),
  [-Errno.ERANGE]: () => ({
    what: 'a resource has no disks or more than 4',
    todo: 'give 1 to 4 path:offset pairs per resource',
  }),
  [-Errno.ENOCSI]: (c) => ({
    what: `${space(c)} already has the maximum of 32 event listeners`,
    todo: 'close unused event registrations',
  }),
  [-Errno.ELIBACC]: () => ({
    what: 'the daemon could not build the state string of a resource',
    todo: 'check resource and path lengths',
  }),
  [-Errno.ELIBBAD]: () => ({
    what: 'a resource state string is malformed',
    todo: 'check the RESOURCE string (escape ":" in paths with "\\")',
  }),
  [-Errno.ELIBSCN]: () => ({
    what: 'a resource path contains a space, which the state string cannot carry',
    todo: 'use paths without spaces for leases that must be inquired/restored',
  }),
  [-Errno.EMSGSIZE]: (c) => ({
    what: `a read or write${where(c)} was short (past the end of the file or device)`,
    todo: 'the offset is beyond the end of the storage; grow the file/volume or fix the offset',
  }),
  [-Errno.EPIPE]: () => ({
    what: 'the connection to the daemon broke while a request was being sent',
    todo: 'check that the daemon is still running (client status); reconnect and retry',
  }),
  [-Errno.ECONNREFUSED]: () => ({
    what: 'nothing is listening on the daemon socket (a stale sanlock.sock from a daemon that exited)',
    todo: 'start the daemon, or point SANLOCK_RUN_DIR at the run dir of the one that is running',
  }),
  [-Errno.ENOTCONN]: () => ({
    what: 'the request was truncated (the client sent less than the header announced)',
    todo: 'a client/library bug or a dropped connection; retry',
  }),
  [-Errno.EALREADY]: (c) => ({
    what: `${lease(c)} is already held in the requested mode`,
    todo: 'nothing to do',
  }),
  [-Errno.EINPROGRESS]: (c) => ({
    what: `${space(c)} is being added or removed right now`,
    todo: 'wait for the join/leave to finish (inq_lockspace -w) and retry',
  }),
  [-Errno.ESTALE]: (c) => ({
    what: `process ${c.pid ?? '(target)'} is exiting; its leases are being released`,
    todo: 'nothing to do for a dying process',
  }),
  [-Errno.EUCLEAN]: (c) => ({
    what: `${lease(c)} is an orphan left by a process that died while holding it persistently`,
    todo: 'adopt it with the ORPHAN flag (same mode), or release the orphan first',
  }),
};

/** Every code that has a specific sentence. */
export function explainedCodes(): number[] {
  return Object.keys(sentences).map(Number).sort((a, b) => b - a);
}

/**
 * `{code, name, message, details}` for any result code. message is
 * `<code> <NAME>: <sentence>`, e.g. `-243 SANLK_ACQUIRE_IDLIVE: lease R1 is held by host 3
 * (generation 5), which renewed 4 s ago`.
 */
export function explain(code: number, context: ExplainContext = {}): Explained {
  const name = codeName(code);
  const s = sentences[code];
  let what: string;
  let todo: string;
  if (s) {
    ({ what, todo } = s(context));
  } else if (code <= -200) {
    what = sanlkStrerror(code).toLowerCase();
    todo = 'see the daemon log for details';
  } else if (code < 0) {
    what = `the system call failed with errno ${-code}`;
    todo = 'see the daemon log for details';
  } else {
    what = code === 0 || code === 1 ? 'success' : `result ${code}`;
    todo = 'nothing to do';
  }
  const label = name === String(code) ? `${code}` : `${code} ${name}`;
  return { code, name, message: `${label}: ${what}`, details: `${capitalise(todo)}.` };
}

function capitalise(s: string): string {
  return s.length ? s[0]!.toUpperCase() + s.slice(1) : s;
}

/** The two lines a CLI prints for an error. */
export function formatExplained(e: Explained): string {
  return `${e.message}\n  ${e.details}`;
}

/** explain() of a thrown value: a SanlockError keeps its code; anything else is -201 with its text. */
export function explainError(err: unknown, context: ExplainContext = {}): Explained {
  if (err instanceof SanlockError) return explain(err.code, context);
  const e = explain(SanlkCode.SANLK_ERROR, context);
  const text = err instanceof Error ? err.message : String(err);
  return { ...e, message: `${e.message} (${text})` };
}
