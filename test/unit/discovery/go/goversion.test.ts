import { compareGoVersions, goVersionAtLeast, parseGoVersion } from '../../../../src/discovery/go/goversion';

describe('Go versions', () => {
  test('parses releases, prereleases, experiment suffixes and devel builds', () => {
    expect(parseGoVersion('go1.22.12')).toMatchObject({ major: 1, minor: 22, patch: 12, devel: false, prerelease: undefined });
    expect(parseGoVersion('go1.20')).toMatchObject({ major: 1, minor: 20, patch: 0 });
    expect(parseGoVersion('go1.23rc1')).toMatchObject({ major: 1, minor: 23, patch: 0, prerelease: 'rc1' });
    expect(parseGoVersion('go1.21.0 X:boringcrypto')).toMatchObject({ minor: 21, patch: 0 });
    expect(parseGoVersion('devel go1.24-abcdef Tue Jan 1 00:00:00 2025 +0000')).toMatchObject({ major: 1, minor: 24, devel: true });
    expect(parseGoVersion('devel +abcdef')).toMatchObject({ devel: true });
    expect(parseGoVersion('gccgo')).toBeUndefined();
  });

  test('orders versions', () => {
    const sorted = ['go1.23.0', 'go1.22.12', 'go1.23rc1', 'go1.23beta2', 'go1.22.2', 'devel go1.23-x', 'go1.23rc2', 'go1.21'].sort(compareGoVersions);
    expect(sorted).toEqual(['go1.21', 'go1.22.2', 'go1.22.12', 'go1.23beta2', 'go1.23rc1', 'go1.23rc2', 'go1.23.0', 'devel go1.23-x']);
    expect(compareGoVersions('go1.20', 'go1.20.0')).toBe(0);
    expect(goVersionAtLeast('go1.17.13', 'go1.17')).toBe(true);
    expect(goVersionAtLeast('go1.16.15', 'go1.17')).toBe(false);
    expect(() => compareGoVersions('nope', 'go1.2')).toThrow(TypeError);
  });
});
