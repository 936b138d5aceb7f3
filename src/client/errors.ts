// The error the client library throws: sanlock's numeric result plus its symbolic name and a
// human sentence, following python3-sanlock's convention (§7): codes in (-200, 0) are -errno
// and read with strerror, codes ≤ -200 are SANLK_* codes read with sanlock_strerror.
import { codeName, sanlkStrerror } from '../codes.js';
import { type ExplainContext, type Explained, explain } from '../lease/explain.js';

/** glibc strerror() texts for the errnos sanlock returns. */
const STRERROR: Record<number, string> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  3: 'No such process',
  5: 'Input/output error',
  7: 'Argument list too long',
  9: 'Bad file descriptor',
  11: 'Resource temporarily unavailable',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  16: 'Device or resource busy',
  17: 'File exists',
  19: 'No such device',
  22: 'Invalid argument',
  25: 'Inappropriate ioctl for device',
  28: 'No space left on device',
  32: 'Broken pipe',
  34: 'Numerical result out of range',
  50: 'No CSI structure available',
  79: 'Can not access a needed shared library',
  80: 'Accessing a corrupted shared library',
  81: '.lib section in a.out corrupted',
  90: 'Message too long',
  104: 'Connection reset by peer',
  107: 'Transport endpoint is not connected',
  111: 'Connection refused',
  114: 'Operation already in progress',
  115: 'Operation now in progress',
  116: 'Stale file handle',
  117: 'Structure needs cleaning',
};

export function strerror(errno: number): string {
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

/** The sentence python3-sanlock puts third in SanlockException for result `code`. */
export function resultSentence(code: number): string {
  if (code < 0 && code > -200) return strerror(-code);
  return sanlkStrerror(code);
}

export class SanlockClientError extends Error {
  /** sanlock's result: -errno (e.g. -17) or a SANLK_* code (e.g. -243). */
  readonly code: number;
  /** "EEXIST", "SANLK_ACQUIRE_IDLIVE", or the number when unknown. */
  readonly codeName: string;
  /** Human sentence: strerror / sanlock_strerror text ("File exists", "Lease is held by another host"). */
  readonly sentence: string;
  /** The operation that failed ("acquire", "add_lockspace", …). */
  readonly op: string;
  /** What it means and what to do (src/lease/explain.ts), for people. */
  get details(): string {
    return this.explain().details;
  }
  /** explain() of this error; ctx (lockspace, resource, pid...) sharpens the sentence. */
  explain(ctx: ExplainContext = {}): Explained {
    return explain(this.code, { operation: this.op, ...ctx });
  }
  constructor(code: number, op: string, detail?: string) {
    const name = codeName(code);
    const sentence = resultSentence(code);
    super(`${op} failed: ${name} (${code}): ${sentence}${detail ? ` [${detail}]` : ''}`);
    this.name = 'SanlockClientError';
    this.code = code;
    this.codeName = name;
    this.sentence = sentence;
    this.op = op;
  }
}
