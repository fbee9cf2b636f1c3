/**
 * Go toolchain version strings as found in build info: "go1.22.12", "go1.20" (a .0 release
 * before Go 1.21 had no ".0"), "go1.23rc1", "go1.21.0 X:boringcrypto" (experiments suffix),
 * "devel go1.24-abcdef Tue ..." (built from a source tree).
 *
 * Ordering: prereleases (beta, rc) come before the .0 release of their minor; a devel build of
 * a known minor sorts after every release of that minor (it is newer code than the last
 * release it branched from); a devel build with no recognisable version sorts after everything.
 */
export interface GoVersion {
  /** The string as given. */
  readonly raw: string;
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** 'beta1', 'rc2', ... ; undefined for a release. */
  readonly prerelease?: string;
  /** Built from a development tree ("devel ..."). */
  readonly devel: boolean;
}

const RELEASE = /^go(\d+)\.(\d+)(?:\.(\d+))?(?:(beta|rc)(\d+))?(?:$|[\s-])/;

/** Parses a Go version; undefined when it is not recognisable at all. */
export function parseGoVersion(raw: string): GoVersion | undefined {
  const s = raw.trim();
  if (s.startsWith('devel')) {
    const m = /go(\d+)\.(\d+)/.exec(s);
    if (!m) return { raw, major: Infinity, minor: 0, patch: 0, devel: true };
    return { raw, major: Number(m[1]), minor: Number(m[2]), patch: Infinity, devel: true };
  }
  const m = RELEASE.exec(s);
  if (!m) return undefined;
  const pre = m[4] !== undefined ? `${m[4]}${m[5]}` : undefined;
  return { raw, major: Number(m[1]), minor: Number(m[2]), patch: m[3] !== undefined ? Number(m[3]) : 0, prerelease: pre, devel: false };
}

/** Orders prerelease tags: beta1 < beta2 < rc1 < rc2 < release. */
function preRank(v: GoVersion): number {
  if (v.prerelease === undefined) return Number.MAX_SAFE_INTEGER;
  const m = /^(beta|rc)(\d+)$/.exec(v.prerelease);
  if (!m) return 0;
  return (m[1] === 'beta' ? 0 : 1_000_000) + Number(m[2]);
}

/** -1, 0 or 1. Accepts strings or parsed versions; unparsable strings throw a TypeError. */
export function compareGoVersions(a: string | GoVersion, b: string | GoVersion): number {
  const va = typeof a === 'string' ? parseGoVersion(a) : a;
  const vb = typeof b === 'string' ? parseGoVersion(b) : b;
  if (!va || !vb) throw new TypeError(`not a Go version: ${String(!va ? a : b)}`);
  const keys: Array<[number, number]> = [
    [va.major, vb.major],
    [va.minor, vb.minor],
    // A prerelease of x.y precedes x.y.0, whatever its (zero) patch says.
    [va.prerelease !== undefined ? -1 : va.patch, vb.prerelease !== undefined ? -1 : vb.patch],
    [preRank(va), preRank(vb)],
  ];
  for (const [x, y] of keys) {
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

/** True when `v` is at least `min` (e.g. goVersionAtLeast(v, 'go1.23')). */
export function goVersionAtLeast(v: string | GoVersion, min: string): boolean {
  return compareGoVersions(v, min) >= 0;
}

/** "1.22" for go1.22.12: the key of a Go minor release line. */
export function goMinor(v: GoVersion): string {
  return `${v.major}.${v.minor}`;
}
