import {
  DEFAULT_QUERY_KEYS,
  hostOfAuthority,
  redactQuery,
  redactTarget,
  redactUrl,
  redactUserinfo,
  urlRedaction,
} from '../../../src/spans/url-redaction';

describe('redactQuery with the default keys', () => {
  it('a signed S3 URL (SigV2 query auth): AWSAccessKeyId and Signature, Expires kept', () => {
    const q = 'AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1893456000&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D';
    expect(redactQuery(q)).toBe('AWSAccessKeyId=REDACTED&Expires=1893456000&Signature=REDACTED');
  });

  it('a signed S3 URL (SigV4): X-Amz-Signature is not in the semconv list, X-Amz-Credential neither', () => {
    // Only the configured keys are redacted: this is what the default list promises, no more.
    const q = 'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-Signature=abc123';
    expect(redactQuery(q)).toBe(q);
    const r = urlRedaction({ queryKeys: ['default', 'X-Amz-Signature', 'X-Amz-Credential'] });
    expect(redactQuery(`${q}&X-Amz-Credential=AKIA%2F20260101`, r)).toBe(
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED',
    );
  });

  it('a signed GCS URL: X-Goog-Signature whatever its case', () => {
    const q =
      'X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20261206T120000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=5b1e9d0f7c';
    expect(redactQuery(q)).toBe(
      'X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Date=20261206T120000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature=REDACTED',
    );
    expect(redactQuery('x-goog-signature=5b1e&X-GOOG-SIGNATURE=77')).toBe('x-goog-signature=REDACTED&X-GOOG-SIGNATURE=REDACTED');
  });

  it('an OAuth callback: code and state; the implicit-flow fragment tokens in a full URL', () => {
    expect(redactQuery('code=4%2F0AX4XfWh-secretcode&state=xyz&scope=email')).toBe('code=REDACTED&state=xyz&scope=email');
    expect(redactUrl('https://app.example.com/cb#access_token=ya29.a0Af&token_type=Bearer&expires_in=3599&id_token=eyJhbGci')).toBe(
      'https://app.example.com/cb#access_token=REDACTED&token_type=Bearer&expires_in=3599&id_token=REDACTED',
    );
  });

  it('every default key, in any case', () => {
    for (const key of DEFAULT_QUERY_KEYS) {
      expect(redactQuery(`a=1&${key}=s3cr3t&b=2`)).toBe(`a=1&${key}=REDACTED&b=2`);
      expect(redactQuery(`${key.toUpperCase()}=s3cr3t`)).toBe(`${key.toUpperCase()}=REDACTED`);
    }
  });

  it('repeated keys: every occurrence', () => {
    expect(redactQuery('token=a&token=b&x=1&TOKEN=c')).toBe('token=REDACTED&token=REDACTED&x=1&TOKEN=REDACTED');
  });

  it('percent-encoded and +-encoded keys are matched decoded, written as sent', () => {
    expect(redactQuery('%73ig=abc&%53IG=def&api%5Fkey=k1&client%5fsecret=k2')).toBe('%73ig=REDACTED&%53IG=REDACTED&api%5Fkey=REDACTED&client%5fsecret=REDACTED');
    const r = urlRedaction({ queryKeys: ['default', 'my key'] });
    expect(redactQuery('my+key=1&my%20key=2', r)).toBe('my+key=REDACTED&my%20key=REDACTED');
  });

  it('malformed percent-encoding neither throws nor leaks', () => {
    expect(redactQuery('sig=%E0%A4%A&%zz=1&to%6ben=x%')).toBe('sig=REDACTED&%zz=1&to%6ben=REDACTED');
  });

  it('keys without values, empty values, empty pairs', () => {
    expect(redactQuery('sig')).toBe('sig');
    expect(redactQuery('debug&sig=&token=x&&')).toBe('debug&sig=REDACTED&token=REDACTED&&');
    expect(redactQuery('=x&sig=y')).toBe('=x&sig=REDACTED');
  });

  it('; separates pairs as & does', () => {
    expect(redactQuery('a=1;sig=abc;b=2')).toBe('a=1;sig=REDACTED;b=2');
  });

  it('a value containing = keeps nothing after the key', () => {
    expect(redactQuery('token=abc==&x=1')).toBe('token=REDACTED&x=1');
  });

  it('a nested URL in a value (proxy, redirect_uri) is redacted inside, encoded or not', () => {
    const inner = 'http://alice:pw@backend:8080/obj?X-Goog-Signature=deadbeef&alt=media';
    expect(redactQuery(`url=${encodeURIComponent(inner)}`)).toBe(
      `url=${encodeURIComponent('http://REDACTED:REDACTED@backend:8080/obj?X-Goog-Signature=REDACTED&alt=media')}`,
    );
    expect(redactQuery('next=/login?token=abc')).toBe('next=/login?token=REDACTED');
    expect(redactQuery('redirect_uri=https%3A%2F%2Fapp%2Fcb%3Fcode%3Dxyz%26state%3D1&client_id=42')).toBe(
      `redirect_uri=${encodeURIComponent('https://app/cb?code=REDACTED&state=1')}&client_id=42`,
    );
    // Nothing sensitive inside: kept byte for byte (no re-encoding).
    expect(redactQuery('url=http%3A%2F%2Fbackend%2Fx%3Fa%3D1')).toBe('url=http%3A%2F%2Fbackend%2Fx%3Fa%3D1');
  });

  it('a nested value that cannot be re-encoded is replaced whole, never thrown on', () => {
    expect(redactQuery('next=%2Fx%3Ftoken%3Dabc%26u%3D\uD800')).toBe('next=REDACTED');
  });

  it('a query without = is returned as is', () => {
    expect(redactQuery('')).toBe('');
    expect(redactQuery('just-a-word')).toBe('just-a-word');
  });
});

describe('redaction settings', () => {
  it('a list without default replaces the built-in keys', () => {
    const r = urlRedaction({ queryKeys: ['session'] });
    expect(redactQuery('session=1&sig=2', r)).toBe('session=REDACTED&sig=2');
  });

  it('default plus extra keys adds', () => {
    const r = urlRedaction({ queryKeys: ['default', 'Session'] });
    expect(redactQuery('SESSION=1&sig=2&a=3', r)).toBe('SESSION=REDACTED&sig=REDACTED&a=3');
  });

  it('query: all replaces every value, keys and value-less keys kept', () => {
    const r = urlRedaction({ query: 'all' });
    expect(redactQuery('a=1&b=two;three&flag&c=', r)).toBe('a=REDACTED&b=REDACTED&flag&c=REDACTED');
    expect(redactUrl('http://h/p?q=search+terms#frag=1', r)).toBe('http://h/p?q=REDACTED#frag=REDACTED');
  });
});

describe('URL credentials', () => {
  it('userinfo becomes REDACTED:REDACTED@, whatever it holds', () => {
    expect(redactUserinfo('user:pass@host:8080')).toBe('REDACTED:REDACTED@host:8080');
    expect(redactUserinfo('user@host')).toBe('REDACTED:REDACTED@host');
    expect(redactUserinfo('us@er:p@ss@host')).toBe('REDACTED:REDACTED@host');
    expect(redactUserinfo('host:80')).toBe('host:80');
    expect(hostOfAuthority('u:p@[::1]:8080')).toBe('[::1]:8080');
  });

  it('redactUrl: credentials, query and fragment together', () => {
    expect(redactUrl('https://admin:hunter2@bucket.s3.amazonaws.com/k?AWSAccessKeyId=AKIA&Signature=x%2By&Expires=1#sig=z')).toBe(
      'https://REDACTED:REDACTED@bucket.s3.amazonaws.com/k?AWSAccessKeyId=REDACTED&Signature=REDACTED&Expires=1#sig=REDACTED',
    );
    expect(redactUrl('http://host/path')).toBe('http://host/path');
  });

  it('redactTarget: a ? inside the fragment is not a query', () => {
    expect(redactTarget('/p#x?token=1')).toBe('/p#x?token=1');
    expect(redactTarget('/p?token=1#frag')).toBe('/p?token=REDACTED#frag');
  });
});
