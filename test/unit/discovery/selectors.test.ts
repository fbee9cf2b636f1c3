import { exeMatches, globToRegExp, isEmptySelection, matchProcess, pidCanMatch } from '../../../src/discovery/selectors';
import { parseListeningSockets } from '../../../src/discovery/listening-ports';
import { parseStatStartTicks } from '../../../src/discovery/process-info';

describe('selectors', () => {
  it.each([
    ['goserver', '/usr/local/bin/goserver', true],
    ['go*', '/usr/local/bin/goserver', true],
    ['*server', '/opt/x/goserver', true],
    ['server', '/opt/x/goserver', false],
    ['/opt/*/goserver', '/opt/x/goserver', true],
    ['/opt/*/goserver', '/opt/x/y/goserver', false],
    ['/opt/**/goserver', '/opt/x/y/goserver', true],
    ['app-[0-9]', '/bin/app-7', true],
    ['app-[!0-9]', '/bin/app-7', false],
    ['a?c', '/bin/abc', true],
    ['a.c', '/bin/abc', false],
  ])('exe glob %p vs %p -> %p', (glob, path, want) => expect(exeMatches(glob, path)).toBe(want));

  it('escapes regex metacharacters', () => {
    expect(globToRegExp('a+b(c)').test('a+b(c)')).toBe(true);
  });

  it('rules out other pids before any read only when pids are all that is selected', () => {
    const pidsOnly = { pids: [7], exeGlobs: [], openPorts: [] };
    expect(pidCanMatch(pidsOnly, 7)).toBe(true);
    expect(pidCanMatch(pidsOnly, 8)).toBe(false);
    expect(pidCanMatch({ ...pidsOnly, exeGlobs: ['api'] }, 8)).toBe(true);
    expect(pidCanMatch({ ...pidsOnly, openPorts: [80] }, 8)).toBe(true);
    expect(pidCanMatch({ ...pidsOnly, containerIds: ['ab'] }, 8)).toBe(true);
    expect(pidCanMatch({ ...pidsOnly, containerIds: [] }, 8)).toBe(false);
    // Whenever pidCanMatch says no, matchProcess would have said no.
    expect(matchProcess(pidsOnly, { pid: 8, exePath: '/x', containerId: undefined }, new Set())).toBeNull();
  });

  it('matches any selector, reporting which', () => {
    const sel = { pids: [7], exeGlobs: ['api-*'], openPorts: [8080] };
    expect(matchProcess(sel, { pid: 7, exePath: '/x' }, new Set())).toBe('pid 7');
    expect(matchProcess(sel, { pid: 8, exePath: '/bin/api-v2' }, new Set())).toBe('exe api-*');
    expect(matchProcess(sel, { pid: 9, exePath: '/bin/other' }, new Set([22, 8080]))).toBe('port 8080');
    expect(matchProcess(sel, { pid: 9, exePath: '/bin/other' }, new Set([22]))).toBeNull();
    expect(isEmptySelection({ pids: [], exeGlobs: [], openPorts: [] })).toBe(true);
  });
});

describe('/proc parsing', () => {
  it('finds LISTEN sockets (state 0A) and their ports', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1',
    ].join('\n');
    expect(parseListeningSockets(text)).toEqual(new Map([['12345', 8080]]));
  });

  it('reads start time even when comm has spaces and parentheses', () => {
    const stat = '123 (my (weird) app) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 4 0 987654 1000 10';
    expect(parseStatStartTicks(stat)).toBe(987654);
  });
});
