import assert from 'node:assert/strict';
import { test } from 'node:test';
import { escapePath } from '../../src/daemon/resources.js';
import { splitKillArgs } from '../../src/daemon/server.js';
import { atoi } from '../../src/daemon/config.js';

test('killpath args split like sanlock\'s helper', () => {
  assert.deepEqual(splitKillArgs('x1 y\\ 2'), ['x1', 'y 2']);
  assert.deepEqual(splitKillArgs('  a   b  '), ['a', 'b']);
  assert.deepEqual(splitKillArgs('a\\\\b c'), ['a\\b', 'c']);
  // any other escape stops parsing; what was collected is kept
  assert.deepEqual(splitKillArgs('a b\\x c'), ['a', 'b']);
  assert.deepEqual(splitKillArgs('a\\'), ['a']);
  assert.deepEqual(splitKillArgs('a\u00e9b c'), ['a']);
  // at most 8 argv entries including the path: 7 arguments
  assert.deepEqual(splitKillArgs('1 2 3 4 5 6 7 8 9'), ['1', '2', '3', '4', '5', '6', '7']);
  assert.deepEqual(splitKillArgs(''), []);
});

test('paths in resource strings escape colon and space', () => {
  assert.equal(escapePath('/a b:c'), '/a\\ b\\:c');
  assert.equal(escapePath('/x\\:y'), '/x\\:y');
  assert.equal(escapePath('/plain/path'), '/plain/path');
});

test('atoi behaves like C', () => {
  assert.equal(atoi(' 42abc'), 42);
  assert.equal(atoi('-7'), -7);
  assert.equal(atoi('abc'), 0);
  assert.equal(atoi(''), 0);
});
