/**
 * Secrets out of URLs, once, where a span's URL attributes are built from captured bytes (Go
 * records and syscall exchanges alike), so every output (OTLP, --print-spans, the trace tree, the
 * web page, RED labels) only ever sees the redacted text.
 *
 * As the HTTP semantic conventions ask: the values of sensitive query keys become `REDACTED` (the
 * key stays, so the query keeps its shape), and URL credentials become `REDACTED:REDACTED@`. Keys
 * match without regard to case and after percent-decoding (`%73ig` is `sig`). A value that is
 * itself a URL or a query (`redirect_uri=`, `next=`, `url=`) is redacted the same way inside, so
 * a signed URL passed to a proxy does not leak through the outer query. Pure and never throws.
 */

export const REDACTED = 'REDACTED';

/** The semconv list plus common secret names (docs/configuration.md, docs/data.md). */
export const DEFAULT_QUERY_KEYS: readonly string[] = Object.freeze([
  'AWSAccessKeyId',
  'Signature',
  'sig',
  'X-Goog-Signature',
  'access_token',
  'refresh_token',
  'id_token',
  'api_key',
  'apikey',
  'password',
  'passwd',
  'secret',
  'client_secret',
  'token',
  'code',
]);

/** In `redaction.query_keys`, stands for DEFAULT_QUERY_KEYS. */
export const DEFAULT_KEYS_TOKEN = 'default';

export interface UrlRedaction {
  /** 'keys': the values of `queryKeys` are replaced; 'all': every query value is. */
  readonly query: 'keys' | 'all';
  /** Lower-case, percent-decoded keys. */
  readonly queryKeys: ReadonlySet<string>;
}

/**
 * The policy from settings. `queryKeys` undefined: the default list; an entry `default` stands for
 * the default list (so `[default, x-api-key]` adds a key and `[x-api-key]` replaces the list).
 */
export function urlRedaction(options: { readonly query?: 'keys' | 'all'; readonly queryKeys?: readonly string[] } = {}): UrlRedaction {
  const keys = new Set<string>();
  for (const k of options.queryKeys ?? [DEFAULT_KEYS_TOKEN]) {
    if (k === DEFAULT_KEYS_TOKEN) for (const d of DEFAULT_QUERY_KEYS) keys.add(d.toLowerCase());
    else if (k !== '') keys.add(decodeKey(k).toLowerCase());
  }
  return { query: options.query ?? 'keys', queryKeys: keys };
}

export const DEFAULT_URL_REDACTION: UrlRedaction = urlRedaction();

/** Nested URLs inside query values are followed this deep (bounded work per span). */
const MAX_DEPTH = 3;

/** Percent-decoding that never throws: `+` is a space, `%XX` a byte (keys are ASCII in practice). */
function decodeKey(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  return s.replace(/\+/g, ' ').replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function decodeValue(s: string): string {
  const plus = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return decodeKey(s);
  }
}

/**
 * The query (without `?`) with sensitive values replaced. Pairs are split at `&` and `;` (some
 * servers take either); a key without `=` has no value and stays as it is.
 */
export function redactQuery(query: string, r: UrlRedaction = DEFAULT_URL_REDACTION, depth = 0): string {
  if (query === '' || query.indexOf('=') < 0) return query;
  if (r.query === 'all') {
    // Only `&` splits here: with every value replaced, a `;` inside a value is hidden too.
    return query
      .split('&')
      .map((pair) => {
        const eq = pair.indexOf('=');
        return eq < 0 ? pair : `${pair.slice(0, eq)}=${REDACTED}`;
      })
      .join('&');
  }
  // Built only when a pair changes: most queries hold no sensitive key and are returned as they are.
  let out: string | undefined;
  let copied = 0;
  let start = 0;
  for (let i = 0; i <= query.length; i++) {
    const c = i < query.length ? query.charCodeAt(i) : 38; /* & */
    if (c !== 38 /* & */ && c !== 59 /* ; */) continue;
    if (i > start) {
      const pair = query.slice(start, i);
      const redacted = redactPair(pair, r, depth);
      if (redacted !== pair) {
        out = (out ?? '') + query.slice(copied, start) + redacted;
        copied = i;
      }
    }
    start = i + 1;
  }
  return out === undefined ? query : out + query.slice(copied);
}

function redactPair(pair: string, r: UrlRedaction, depth: number): string {
  const eq = pair.indexOf('=');
  if (eq < 0) return pair;
  const key = pair.slice(0, eq);
  if (r.queryKeys.has(decodeKey(key).toLowerCase())) return `${key}=${REDACTED}`;
  const value = pair.slice(eq + 1);
  const nested = redactNested(value, r, depth);
  return nested === value ? pair : `${key}=${nested}`;
}

/**
 * A value that holds a URL or a query of its own (percent-encoded or not): redacted inside and
 * re-encoded, only when that changed something (otherwise the value is kept byte for byte).
 */
function redactNested(value: string, r: UrlRedaction, depth: number): string {
  if (depth >= MAX_DEPTH) return value;
  if (value.indexOf('%') < 0 && value.indexOf('=') < 0 && value.indexOf('@') < 0) return value;
  const decoded = decodeValue(value);
  if (decoded.indexOf('=') < 0 && decoded.indexOf('@') < 0) return value;
  const redacted = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(decoded) ? redactUrl(decoded, r, depth + 1) : redactQueryOrFragment(decoded, r, depth + 1);
  if (redacted === decoded) return value;
  if (value === decoded) return redacted;
  try {
    return encodeURIComponent(redacted);
  } catch {
    // A lone surrogate cannot be encoded: the whole value goes, never the secret inside it.
    return REDACTED;
  }
}

function redactQueryOrFragment(s: string, r: UrlRedaction, depth: number): string {
  const q = s.indexOf('?');
  if (q >= 0) return s.slice(0, q + 1) + redactAfterQuestion(s.slice(q + 1), r, depth);
  return redactQuery(s, r, depth);
}

/** A query that may carry a `#fragment`: both redacted (implicit-flow tokens travel in fragments). */
function redactAfterQuestion(rest: string, r: UrlRedaction, depth: number): string {
  const hash = rest.indexOf('#');
  if (hash < 0) return redactQuery(rest, r, depth);
  return `${redactQuery(rest.slice(0, hash), r, depth)}#${redactQuery(rest.slice(hash + 1), r, depth)}`;
}

/** `user:pass@host:port` -> `REDACTED:REDACTED@host:port`; an authority without `@` unchanged. */
export function redactUserinfo(authority: string): string {
  const at = authority.lastIndexOf('@');
  return at < 0 ? authority : `${REDACTED}:${REDACTED}@${authority.slice(at + 1)}`;
}

/** The host[:port] of an authority, without any userinfo (for server.address/server.port). */
export function hostOfAuthority(authority: string): string {
  const at = authority.lastIndexOf('@');
  return at < 0 ? authority : authority.slice(at + 1);
}

/**
 * A full URL (`scheme://[userinfo@]host/path?query#fragment`) with credentials, sensitive query
 * values and sensitive fragment values redacted. Anything else is treated as a request target.
 */
export function redactUrl(url: string, r: UrlRedaction = DEFAULT_URL_REDACTION, depth = 0): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)([^/?#]*)(.*)$/s.exec(url);
  if (!m) return redactTarget(url, r, depth);
  return m[1] + redactUserinfo(m[2]) + redactTarget(m[3], r, depth);
}

/** A path with an optional `?query` and `#fragment`. */
export function redactTarget(target: string, r: UrlRedaction = DEFAULT_URL_REDACTION, depth = 0): string {
  const q = target.indexOf('?');
  const hash = target.indexOf('#');
  if (q >= 0 && (hash < 0 || q < hash)) return target.slice(0, q + 1) + redactAfterQuestion(target.slice(q + 1), r, depth);
  if (hash >= 0) return `${target.slice(0, hash + 1)}${redactQuery(target.slice(hash + 1), r, depth)}`;
  return target;
}
