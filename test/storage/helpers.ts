// Shared by the storage tests.
import assert from 'node:assert/strict';
import { SanlockError } from '../../src/codes.js';

/** The sanlock code a promise rejects with (0 when it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof SanlockError, String(e));
    return e.code;
  }
  return 0;
}

/** Polls `pred` every 5 ms; fails the test when it is still false after `ms`. */
export async function until(pred: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    assert.ok(Date.now() < end, 'condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
