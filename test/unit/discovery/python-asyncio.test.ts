/**
 * The asyncio capability probe on interpreters this machine cannot run: CPython 3.14 (not
 * obtainable here; it keeps the running task in the thread state, which the probes do not read)
 * and any other version without an offsets table is reported as not linked, with the reason, by
 * the per-process probe (start-up report, /api/processes) and by doctor's interpreter list.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inspectInterpreter, probeAsyncio, uvloopLoaded } from '../../../src/discovery/python-asyncio';
import { procRoot, setProcRoot } from '../../../src/discovery/process-info';

const MAPS_314 = [
  '55d0c0a00000-55d0c0a01000 r--p 00000000 fe:00 1234 /opt/py/bin/python3.14',
  '7f45e8000000-7f45e8400000 r--p 00000000 fe:00 99 /opt/py/lib/libpython3.14.so.1.0',
  '7f45e86b7000-7f45e86bb000 r--p 00000000 fe:00 21490 /opt/py/lib/python3.14/lib-dynload/_asyncio.cpython-314-x86_64-linux-gnu.so',
  '7f45e8700000-7f45e8800000 r--p 00000000 fe:00 21491 /opt/venv/lib/python3.14/site-packages/uvloop/loop.cpython-314-x86_64-linux-gnu.so',
].join('\n');

describe('asyncio probe: versions without a layout', () => {
  let dir: string;
  let saved: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sb-pyprobe-'));
    saved = procRoot();
  });
  afterEach(() => {
    setProcRoot(saved);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a CPython 3.14 process with asyncio loaded: not linked, and why', () => {
    mkdirSync(path.join(dir, '42'));
    writeFileSync(path.join(dir, '42', 'maps'), MAPS_314);
    setProcRoot(dir);
    expect(probeAsyncio(42)).toEqual({
      kind: 'unlinkable',
      version: '3.14',
      reason: 'CPython 3.14 is not supported (3.10 .. 3.13; 3.14 keeps the running task in the thread state, not read yet)',
    });
    expect(uvloopLoaded(42)).toBe(true);
    expect(uvloopLoaded(43)).toBe(false);
  });

  it("doctor's interpreter list: python3.14 not linkable, and why", () => {
    const exe = path.join(dir, 'bin', 'python3.14');
    mkdirSync(path.dirname(exe));
    writeFileSync(exe, '');
    expect(inspectInterpreter(exe)).toEqual({
      path: exe,
      version: '3.14',
      linkable: false,
      detail: 'CPython 3.14 is not supported (3.10 .. 3.13; 3.14 keeps the running task in the thread state, not read yet)',
    });
    const exe9 = path.join(dir, 'bin', 'python3.9');
    writeFileSync(exe9, '');
    expect(inspectInterpreter(exe9)?.detail).toBe('CPython 3.9 is not supported (3.10 .. 3.13)');
  });
});
