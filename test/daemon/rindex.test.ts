// Resource index commands through our daemon, checked with the real `sanlock direct` tools.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { scratchDir } from '../helpers/real-sanlock.js';
import { type OurDaemon, pyAvailable, SANLOCK_BIN, startOurDaemon } from './our-daemon.js';

const skip = !pyAvailable();

describe('our daemon: rindex commands', { skip }, () => {
  let d: OurDaemon;
  let rx: string;
  before(async () => {
    const dir = scratchDir('daemon-rx');
    rx = join(dir, 'rx');
    execFileSync('truncate', ['-s', '8M', rx]);
    execFileSync(SANLOCK_BIN, ['direct', 'init', '-s', `LS4:0:${rx}:0`, '-o', '1']);
    d = await startOurDaemon(join(dir, 'run'));
  });
  after(async () => {
    await d.stop();
  });

  test('format, create (needs the lockspace), lookup, update, delete, rebuild', () => {
    const X = `LS4:${rx}:1M`;
    assert.equal(d.cli(['client', 'format', '-x', X]).stdout, 'format done 0\n');
    assert.equal(d.cli(['client', 'create', '-x', X, '-e', 'RES1']).stdout, 'create_resource done -2\n');
    assert.match(d.cli(['client', 'add_lockspace', '-s', `LS4:1:${rx}:0`, '-o', '1']).stdout, /done 0\n$/);
    assert.equal(d.cli(['client', 'create', '-x', X, '-e', 'RES1']).stdout, 'create_resource done 0\noffset 3145728\n');
    assert.equal(d.cli(['client', 'create', '-x', X, '-e', 'RES2']).stdout, 'create_resource done 0\noffset 4194304\n');
    assert.equal(d.cli(['client', 'create', '-x', X, '-e', 'RES1']).stdout, 'create_resource done -17\n');
    assert.equal(d.cli(['client', 'lookup', '-x', X, '-e', 'RES2']).stdout, 'lookup done 0\nname RES2 offset 4194304\n');
    assert.equal(d.cli(['client', 'lookup', '-x', X]).stdout, 'lookup done 0\nname - offset 5242880\n');
    assert.equal(d.cli(['client', 'update', '-x', X, '-e', 'RES9:6M']).stdout, 'update done 0\n');
    assert.equal(execFileSync(SANLOCK_BIN, ['direct', 'lookup', '-x', X, '-e', 'RES9'], { encoding: 'utf8' }), 'lookup done 0\nname RES9 offset 6291456\n');
    assert.equal(d.cli(['client', 'delete', '-x', X, '-e', 'RES2']).stdout, 'delete_resource done 0\n');
    assert.equal(d.cli(['client', 'lookup', '-x', X, '-e', 'RES2']).stdout, 'lookup done -2\n');
    // rebuild keeps only entries whose lease exists: RES1 stays, RES9 (no lease) goes
    assert.equal(d.cli(['client', 'rebuild', '-x', X]).stdout, 'rebuild done 0\n');
    assert.equal(d.cli(['client', 'lookup', '-x', X, '-e', 'RES1']).stdout, 'lookup done 0\nname RES1 offset 3145728\n');
    assert.equal(d.cli(['client', 'lookup', '-x', X, '-e', 'RES9']).stdout, 'lookup done -2\n');
    const dump = execFileSync(SANLOCK_BIN, ['direct', 'dump', rx], { encoding: 'utf8' });
    assert.match(dump, /02097152 +LS4 +rindex_lease 0000000000 0001 0001 \d+\n/);
    assert.match(dump, /03145728 +LS4 +RES1 0000000000 0000 0000 0\n/);
  });
});
