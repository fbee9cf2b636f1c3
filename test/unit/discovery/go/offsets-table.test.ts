import { SpanbridgeError } from '../../../../src/errors';
import { compareGoVersions } from '../../../../src/discovery/go/goversion';
import { findTableEntry, GO_FIELD_SINCE, GO_OFFSET_KEYS, OFFSETS_TABLE, OffsetsTable, offsetsFromTable } from '../../../../src/discovery/go/offsets';

const table: OffsetsTable = {
  schema: 1,
  minors: {
    '1.22': [
      { from: 'go1.22.0', to: 'go1.22.4', built: ['go1.22.0', 'go1.22.4'], offsets: { 'runtime.g.goid': 1 } },
      { from: 'go1.22.6', to: 'go1.22.12', built: ['go1.22.6', 'go1.22.12'], offsets: { 'runtime.g.goid': 2 } },
    ],
  },
};

describe('offsets table lookup rule', () => {
  test('a version inside a range uses that range', () => {
    expect(findTableEntry('go1.22.0', table)?.offsets['runtime.g.goid']).toBe(1);
    expect(findTableEntry('go1.22.3', table)?.offsets['runtime.g.goid']).toBe(1);
    expect(findTableEntry('go1.22.12', table)?.offsets['runtime.g.goid']).toBe(2);
  });

  test('reports how the version matched', () => {
    expect(offsetsFromTable('go1.22.4', table).tableMatch).toBe('built');
    expect(offsetsFromTable('go1.22.2', table).tableMatch).toBe('range');
    expect(offsetsFromTable('go1.22.5', table)).toMatchObject({ tableMatch: 'nearest-lower', tableEntry: 'go1.22.0..go1.22.4' });
  });

  test('otherwise the nearest lower patch of the same minor', () => {
    expect(findTableEntry('go1.22.5', table)?.to).toBe('go1.22.4');
    expect(findTableEntry('go1.22.30', table)?.to).toBe('go1.22.12');
    expect(findTableEntry('go1.22.30 X:boringcrypto', table)?.to).toBe('go1.22.12');
  });

  test('never guesses across minors, for prereleases or devel toolchains', () => {
    expect(findTableEntry('go1.23.0', table)).toBeUndefined();
    expect(findTableEntry('go1.21.13', table)).toBeUndefined();
    expect(findTableEntry('go1.22rc1', table)).toBeUndefined();
    expect(findTableEntry('devel go1.22-abc', table)).toBeUndefined();
  });

  test('no entry: ERR_NOT_SUPPORTED naming the Go version', () => {
    let err: unknown;
    try {
      offsetsFromTable('go1.99.1', table);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpanbridgeError);
    expect((err as SpanbridgeError).code).toBe('ERR_NOT_SUPPORTED');
    expect((err as Error).message).toContain('go1.99.1');
  });
});

describe('the generated offsets table', () => {
  const minors = Object.keys(OFFSETS_TABLE.minors);

  test('covers Go 1.21 through 1.26', () => {
    for (const m of ['1.21', '1.22', '1.23', '1.24', '1.25', '1.26']) expect(minors).toContain(m);
  });

  test('every entry has every field its Go version has, and only those', () => {
    for (const entries of Object.values(OFFSETS_TABLE.minors)) {
      for (const e of entries) {
        expect(compareGoVersions(e.from, e.to)).toBeLessThanOrEqual(0);
        expect(e.built).toContain(e.from);
        expect(e.built).toContain(e.to);
        for (const k of GO_OFFSET_KEYS) {
          const since = GO_FIELD_SINCE[k];
          const expected = since === undefined || compareGoVersions(e.from, since) >= 0;
          expect([k, typeof e.offsets[k] === 'number']).toEqual([k, expected]);
        }
      }
    }
  });

  test('Request.Pattern from Go 1.23 on', () => {
    expect(offsetsFromTable('go1.22.12').missing).toContain('net/http.Request.Pattern');
    expect(offsetsFromTable('go1.23.0').offsets['net/http.Request.Pattern']).toEqual(expect.any(Number));
  });
});
