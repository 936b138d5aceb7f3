// The measuring pieces of `npm run bench` that can be checked without timing anything: the
// strace parser of case 3, the storage-load simulator of case 7, the SVG chart and targets.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { XMLValidator } from 'fast-xml-parser';
import { distributionsSvg } from '../../bench/chart.js';
import { target } from '../../bench/helpers.js';
import { GEOMETRIES, parseStrace, simulateLockspace } from '../../bench/io.js';

const TRACE = [
  '100 1795550868.317456 pread64(36</d/ours/res>, "\\20 \\25"..., 1048576, 0) = 1048576',
  '100 1795550868.320204 pwrite64(36</d/ours/res>, "\\1\\0"..., 512, 1024) = 512',
  '101 1795550868.327370 pwrite64(36</d/ours/res>, "\\1\\0"..., 512, 1024 <unfinished ...>',
  '102 1795550868.327371 pread64(25</d/ours/ls>,  <unfinished ...>',
  '101 1795550868.327940 <... pwrite64 resumed>) = 512',
  '102 1795550868.328000 <... pread64 resumed>"\\20 !"..., 1048576, 0) = 1048576',
  '103 1795550868.4 write(2</dev/pts/0>, "log line", 8) = 8',
  '104 1795550868.5 read(7<socket:[123]>, "x", 32) = 32',
  '25156 1795550879.354949 io_submit(0x7f, 2, [{aio_data=0, aio_lio_opcode=IOCB_CMD_PREAD, aio_fildes=9</d/real/res>, aio_buf=0x7fcbad6f9000, aio_nbytes=1048576, aio_offset=0}, {aio_data=0, aio_lio_opcode=IOCB_CMD_PWRITE, aio_fildes=9</d/real/res>, aio_buf="\\1\\0}"..., aio_nbytes=512, aio_offset=1024}]) = 2',
  '25157 1795550879.36 io_getevents(0x7f, 1, 1, [{data=0, obj=0x1, res=512, res2=0}], NULL) = 1',
  '25158 1795550879.37 io_uring_enter(5, 1, 0, 0, NULL, 8) = 1',
].join('\n');

test('parseStrace counts file I/O of pread/pwrite, interrupted calls and libaio iocbs', () => {
  const ours = parseStrace(TRACE, '/d/ours/');
  assert.equal(ours.uring, 1);
  assert.deepEqual(
    ours.events.map((e) => [e.path, e.write, e.bytes, e.offset]),
    [
      ['/d/ours/res', false, 1048576, 0],
      ['/d/ours/res', true, 512, 1024],
      ['/d/ours/res', true, 512, 1024],
      ['/d/ours/ls', false, 1048576, -1],
    ],
  );
  const real = parseStrace(TRACE, '/d/real/');
  assert.deepEqual(
    real.events.map((e) => [e.path, e.write, e.bytes, e.offset, e.t]),
    [
      ['/d/real/res', false, 1048576, 0, 1795550879.354949],
      ['/d/real/res', true, 512, 1024, 1795550879.354949],
    ],
  );
});

test('case 7 simulator: 250 hosts on a 4K/1M lockspace renew at the model rate (2 I/Os per host per 2N, less the pacing slack)', async () => {
  const g = GEOMETRIES.find((x) => x.label === '4K/1M')!;
  const r = await simulateLockspace(g, 250, 10, 7);
  const modelIops = (250 * 2) / 20;
  const modelMBps = (250 * (1024 * 1024 + 4096)) / 20 / 1e6;
  assert.ok(r.iops <= modelIops && r.iops >= 0.85 * modelIops, `iops ${r.iops} vs model ${modelIops}`);
  assert.ok(r.mbps <= modelMBps && r.mbps >= 0.85 * modelMBps, `MB/s ${r.mbps} vs model ${modelMBps}`);
  assert.equal(r.renewalsPerSec * 2, r.iops, 'one read and one write per renewal');
});

test('distributionsSvg draws one curve per daemon and is well-formed XML', () => {
  const svg = distributionsSvg(
    [
      { title: 'pairs <EX>', unit: 'µs', series: { ours: [1, 2, 3, 400], theirs: [5, 6, 7] } },
      { title: 'renewals', unit: 'ms', series: { ours: [2500, 2510], theirs: [2490, 2600] }, scale: 'linear' },
    ],
    'caption & date',
  );
  assert.equal(XMLValidator.validate(svg), true);
  assert.equal(svg.match(/<polyline/g)?.length, 4);
  assert.match(svg, /pairs &lt;EX&gt;/);
  assert.match(svg, /ours: n=4, median 3.00/);
});

test('target() passes on the bound and fails past it or on NaN', () => {
  assert.equal(target('≤ 0.8', 0.8, '<=', 0.8).pass, true);
  assert.equal(target('≤ 0.8', 0.81, '<=', 0.8).pass, false);
  assert.equal(target('≥ 1.5', 1.49, '>=', 1.5).pass, false);
  assert.equal(target('≥ 1.5', Number.NaN, '>=', 1.5).pass, false);
});
