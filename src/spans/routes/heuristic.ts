/**
 * The route of a path nobody declared a pattern for (`routes.unmatched: heuristic`, the default,
 * as in Beyla): segments that look like identifiers become placeholders, words stay.
 *
 *   /users/42/orders/550e8400-e29b-41d4-a716-446655440000  ->  /users/{id}/orders/{id}
 *   /v2/reports/2024-05-01                                  ->  /v2/reports/{date}
 *   /blobs/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b          ->  /blobs/{id}
 *   /static/app.3f9a2c1b.js                                 ->  /static/app.{id}.js
 *   /api/health, /static/app.js, /v1/sha256, /oauth2/token  ->  unchanged
 *
 * An identifier is: a number; a UUID; a hex run of 8+ characters with a digit (hashes, object ids);
 * an ISO date (`{date}`); an e-mail address; a token with a run of 3+ digits (`ORD-12345`,
 * `IMG_20240501`) or with digits among letters (`a1b2c3`, `x7Kp9Q`); any token of 16+ characters
 * with a digit (API keys, ULIDs, nanoids). Words, words with a small number (`v2`, `http2`,
 * `sha256`, `ipv6`) and numbers with a unit (`2fa`, `4k`) stay. What the heuristic cannot know (a
 * slug like `/blog/how-to-cook-pasta`) stays too: the per-service route limit bounds it.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX_RUN = /^[0-9a-f]{8,}$/i;
const DIGITS = /^\d+$/;
const DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const VERSION = /^v\d+([._]\d+)*$/i;
const WORD_AND_SMALL_NUMBER = /^[a-z]+\d{1,3}$/i;
const NUMBER_AND_UNIT = /^\d{1,2}[a-z]{1,3}$/i;
const DIGIT_RUN = /\d{3,}/;
const HAS_DIGIT = /\d/;
const TOKEN_CHARS = /^[A-Za-z0-9_-]+$/;
const SEPARATORS = /[-_.~]/;
/** `name.ext`: an extension of 1-6 characters starting with a letter. */
const FILE = /^(.+)\.([a-z][a-z0-9]{0,5})$/i;

export const ID_PLACEHOLDER = '{id}';
export const DATE_PLACEHOLDER = '{date}';

/** Tokens that are identifiers by their whole shape (numbers, UUIDs, dates, hashes, e-mails). */
function exactClass(token: string): string | undefined {
  if (DIGITS.test(token)) return ID_PLACEHOLDER;
  if (UUID.test(token)) return ID_PLACEHOLDER;
  if (DATE.test(token)) return DATE_PLACEHOLDER;
  if (HEX_RUN.test(token) && HAS_DIGIT.test(token)) return ID_PLACEHOLDER;
  if (token.includes('@')) return ID_PLACEHOLDER;
  return undefined;
}

/**
 * True when `token` has no digit and no '@': a word (or a file name of words), which no rule
 * below replaces. Most segments are words; one pass over the characters spares them the regexes.
 */
function plainWord(token: string): boolean {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if ((c >= 48 && c <= 57) || c === 64) return false;
  }
  return true;
}

/** The placeholder for an identifier-like token, or undefined for a word. */
export function classifyToken(token: string): string | undefined {
  if (token === '' || plainWord(token)) return undefined;
  const exact = exactClass(token);
  if (exact !== undefined) return exact;
  if (VERSION.test(token)) return undefined;
  if (!HAS_DIGIT.test(token)) return undefined;
  if (token.length <= 12 && (WORD_AND_SMALL_NUMBER.test(token) || NUMBER_AND_UNIT.test(token))) return undefined;
  if (DIGIT_RUN.test(token)) return ID_PLACEHOLDER;
  // Long generated tokens (keys, ULIDs, nanoids); dotted names (jquery-3.7.1.min) are not tokens.
  if (token.length >= 16 && TOKEN_CHARS.test(token)) return ID_PLACEHOLDER;
  // Digits among letters in one part (a1b2c3, cus_9aBc7XyZ12): generated, not written.
  for (const part of token.split(SEPARATORS)) {
    if (part.length >= 4 && /[a-z]/i.test(part) && !WORD_AND_SMALL_NUMBER.test(part) && (part.match(/\d/g)?.length ?? 0) >= 2) return ID_PLACEHOLDER;
  }
  return undefined;
}

function decode(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** One path segment as it appears in the route. */
export function heuristicSegment(segment: string): string {
  const token = decode(segment);
  if (plainWord(token)) return segment;
  const exact = exactClass(token);
  if (exact !== undefined) return exact;
  const file = FILE.exec(token);
  if (!file) return classifyToken(token) ?? segment;
  // A file name: an identifier as the whole stem (`550e8400-....json`, `IMG_20240501_1234.jpg`) or
  // as a dotted part of it (content-hashed assets: `app.3f9a2c1b.js`).
  const [, stem, ext] = file;
  const parts = stem.split('.');
  if (parts.length === 1) {
    const stemClass = classifyToken(stem);
    return stemClass !== undefined ? `${stemClass}.${ext}` : segment;
  }
  // Dotted stems carry versions (jquery-3.7.1.min): only hash parts are ids there.
  let changed = false;
  for (let i = 0; i < parts.length; i++) {
    if (HEX_RUN.test(parts[i]) && HAS_DIGIT.test(parts[i])) {
      parts[i] = ID_PLACEHOLDER;
      changed = true;
    }
  }
  return changed ? `${parts.join('.')}.${ext}` : segment;
}

/**
 * The heuristic route of `path` (url.path, without the query): identifier-like segments replaced,
 * the trailing slash removed (a path with and without one is the same route). '' when `path` is
 * not an origin-form path.
 */
export function heuristicRoute(path: string): string {
  if (!path.startsWith('/')) return '';
  if (path === '/') return '/';
  const end = path.length > 1 && path.endsWith('/') ? path.length - 1 : path.length;
  const segments = path.slice(1, end).split('/');
  let out = '';
  for (const s of segments) out += `/${heuristicSegment(s)}`;
  return out;
}
