// sanlock's result codes: every layer reports failures with these numbers so that a
// caller (python3-sanlock, libsanlock, the CLI) sees exactly what sanlock would return.

export const SANLK_OK = 1;

/** Linux errno values, returned negated by the daemon. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EIO: 5,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  EINVAL: 22,
  ENOTTY: 25,
  EPIPE: 32,
  ENOSPC: 28,
  ERANGE: 34,
  ENOCSI: 50,
  ELIBACC: 79,
  ELIBBAD: 80,
  ELIBSCN: 81,
  EMSGSIZE: 90,
  ENOTCONN: 107,
  ECONNREFUSED: 111,
  EALREADY: 114,
  EINPROGRESS: 115,
  ESTALE: 116,
  EUCLEAN: 117,
} as const;

export const SanlkCode = {
  SANLK_ERROR: -201,
  SANLK_AIO_TIMEOUT: -202,
  SANLK_WD_ERROR: -203,
  SANLK_DBLOCK_READ: -210,
  SANLK_DBLOCK_WRITE: -211,
  SANLK_DBLOCK_LVER: -212,
  SANLK_DBLOCK_MBAL: -213,
  SANLK_DBLOCK_CHECKSUM: -214,
  SANLK_LEADER_READ: -220,
  SANLK_LEADER_WRITE: -221,
  SANLK_LEADER_DIFF: -222,
  SANLK_LEADER_MAGIC: -223,
  SANLK_LEADER_VERSION: -224,
  SANLK_LEADER_SECTORSIZE: -225,
  SANLK_LEADER_LOCKSPACE: -226,
  SANLK_LEADER_RESOURCE: -227,
  SANLK_LEADER_NUMHOSTS: -228,
  SANLK_LEADER_CHECKSUM: -229,
  SANLK_ADDLS_SIZES: -230,
  SANLK_ADDLS_INVALID_HOSTID: -231,
  SANLK_ACQUIRE_LVER: -240,
  SANLK_ACQUIRE_LOCKSPACE: -241,
  SANLK_ACQUIRE_IDDISK: -242,
  SANLK_ACQUIRE_IDLIVE: -243,
  SANLK_ACQUIRE_OWNED: -244,
  SANLK_ACQUIRE_OTHER: -245,
  SANLK_ACQUIRE_SHRETRY: -246,
  SANLK_ACQUIRE_OWNED_RETRY: -247,
  SANLK_RELEASE_LVER: -250,
  SANLK_RELEASE_OWNER: -251,
  SANLK_RENEW_OWNER: -260,
  SANLK_RENEW_DIFF: -261,
  SANLK_HOSTID_BUSY: -262,
  SANLK_REQUEST_MAGIC: -270,
  SANLK_REQUEST_VERSION: -271,
  SANLK_REQUEST_OLD: -272,
  SANLK_REQUEST_LVER: -273,
  SANLK_RINDEX_MAGIC: -274,
  SANLK_RINDEX_VERSION: -275,
  SANLK_RINDEX_LOCKSPACE: -276,
  SANLK_RINDEX_OFFSET: -277,
  SANLK_RINDEX_DIFF: -278,
} as const;

/** sanlock_strerror() text; codes it does not know print "Unknown error" exactly as sanlock does. */
const sanlkText: Record<number, string> = {
  [-201]: 'General error',
  [-202]: 'IO timeout',
  [-203]: 'Watchdog device error',
  [-210]: 'Lease read error in dblock',
  [-211]: 'Lease write error in dblock',
  [-212]: 'Lease was acquired by another host in new ballot',
  [-213]: 'Lease was acquired by another host in current ballot',
  [-214]: 'Lease checksum error in dblock',
  [-220]: 'Lease read error in leader',
  [-221]: 'Lease write error in leader',
  [-222]: 'Lease read inconsistent',
  [-223]: 'Lease does not exist on storage',
  [-224]: 'Lease format version on storage is not recognized',
  [-225]: 'Lease sector size is inconsistent',
  [-226]: 'Lease lockspace name is incorrect',
  [-227]: 'Lease resource name is incorrect',
  [-228]: 'Lease num_hosts is incorrect',
  [-229]: 'Lease checksum error in leader',
  [-241]: 'Lease lockspace is not found',
  [-242]: 'Lease lockspace disk cannot be opened',
  [-243]: 'Lease is held by another host',
  [-244]: 'Lease was acquired by another host in other ballot',
  [-245]: 'Lease was acquired by another host in local commit',
  [-246]: 'Lease is held by another host for shared acquire',
  [-247]: 'Lease is owned by another host',
  [-250]: 'Lease release version is incorrect',
  [-251]: 'Lease release owner is incorrect',
  [-260]: 'Lease renew owner is incorrect',
  [-261]: 'Lease renew data has changed',
  [-262]: 'Lease host ID is being used by another host',
  [-270]: 'Lease request block has invalid data',
  [-271]: 'Lease request block has invalid version',
  [-272]: 'Lease request has newer lease version',
  [-273]: 'Lease request block has newer version',
};

const nameByCode = new Map<number, string>();
for (const [name, code] of Object.entries(SanlkCode)) nameByCode.set(code, name);
for (const [name, errno] of Object.entries(Errno)) nameByCode.set(-errno, name);

/** Symbolic name of a result code: "SANLK_ACQUIRE_IDLIVE", "EEXIST", or the number itself. */
export function codeName(code: number): string {
  return nameByCode.get(code) ?? String(code);
}

/** The text sanlock_strerror() gives for SANLK_* codes (≤ -200). */
export function sanlkStrerror(code: number): string {
  return sanlkText[code] ?? 'Unknown error';
}

/**
 * An error carrying sanlock's numeric result code (negative). Thrown across layer
 * boundaries so the daemon can put `code` into the reply header unchanged.
 */
export class SanlockError extends Error {
  readonly code: number;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: number, message?: string, details?: Record<string, unknown>) {
    super(message ?? `${codeName(code)} (${code})`);
    this.name = 'SanlockError';
    this.code = code;
    this.details = details;
  }
}

/** Result code of any thrown value: SanlockError's own, else SANLK_ERROR. */
export function errorCode(err: unknown): number {
  if (err instanceof SanlockError) return err.code;
  return SanlkCode.SANLK_ERROR;
}
