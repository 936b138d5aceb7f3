// log_dump's in-memory ring: the newest whole lines that fit in a fixed number of bytes, kept as
// UTF-8 bytes in one preallocated buffer, as sanlock keeps its log_dump buffer. Keeping the lines
// as JS strings instead cost far more than their text: a log line is built by concatenation, and
// a retained concatenated string holds its parts (measured with 10 000 held leases: ~9.5 MiB of
// heap for the 1 MiB of text), all of it old-generation data for the GC to mark again and again.
import assert from 'node:assert';

const NL = 0x0a;

export class LineRing {
  private readonly buf: Buffer;
  private readonly scratch: Buffer;
  /** where the next line's first byte goes */
  private end = 0;
  /** bytes of the whole lines held (each with its newline), ending just before `end` */
  private used = 0;

  /**
   * `capacity`: bytes kept, newlines included; `lineMax`: bytes of the longest line stored
   * (longer ones are cut at a character boundary), newline included.
   */
  constructor(
    readonly capacity: number,
    readonly lineMax: number,
  ) {
    assert(Number.isInteger(lineMax) && lineMax >= 2 && capacity >= lineMax, 'a ring holds at least one line');
    this.buf = Buffer.alloc(capacity);
    this.scratch = Buffer.alloc(lineMax);
  }

  /** Bytes held, newlines included. */
  get bytes(): number {
    return this.used;
  }

  push(line: string): void {
    // Buffer.write stops before a character that would not fit whole
    const len = this.scratch.write(line, 0, this.lineMax - 1, 'utf8') + 1;
    this.scratch[len - 1] = NL;
    while (this.used + len > this.capacity) this.dropOldest();
    const first = Math.min(len, this.capacity - this.end);
    this.scratch.copy(this.buf, this.end, 0, first);
    if (first < len) this.scratch.copy(this.buf, 0, first, len);
    this.end = (this.end + len) % this.capacity;
    this.used += len;
  }

  /** The lines, oldest first, joined by newlines, without a final newline. */
  dump(): Buffer {
    if (this.used === 0) return Buffer.alloc(0);
    const out = Buffer.allocUnsafe(this.used - 1);
    const start = this.start();
    const first = Math.min(this.used, this.capacity - start);
    this.buf.copy(out, 0, start, start + Math.min(first, this.used - 1));
    if (first < this.used - 1) this.buf.copy(out, first, 0, this.used - 1 - first);
    return out;
  }

  private start(): number {
    return (this.end - this.used + this.capacity) % this.capacity;
  }

  private dropOldest(): void {
    assert(this.used > 0);
    const start = this.start();
    // every held line ends in a newline inside the held bytes, so the first newline found from
    // `start` (before the end of the buffer, else from its beginning) ends the oldest line
    let nl = this.buf.indexOf(NL, start);
    let len: number;
    if (nl >= 0 && nl - start < this.used) len = nl - start + 1;
    else {
      nl = this.buf.indexOf(NL, 0);
      assert(nl >= 0);
      len = this.capacity - start + nl + 1;
    }
    assert(len <= this.used, 'log ring lost a line boundary');
    this.used -= len;
  }
}
