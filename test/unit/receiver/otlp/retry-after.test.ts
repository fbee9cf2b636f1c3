import { parseRetryAfterMs } from '../../../../receiver/otlp/retry-after';
import { decodeRpcStatusMessage } from '../../../../receiver/otlp/rpc-status';

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2026-11-25T10:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfterMs('7', now)).toBe(7000);
    expect(parseRetryAfterMs(' 0 ', now)).toBe(0);
    expect(parseRetryAfterMs(['3', '9'], now)).toBe(3000);
  });

  it('reads an HTTP-date relative to now, never negative', () => {
    expect(parseRetryAfterMs('Wed, 25 Nov 2026 10:00:30 GMT', now)).toBe(30000);
    expect(parseRetryAfterMs('Wed, 25 Nov 2026 09:00:00 GMT', now)).toBe(0);
  });

  it('ignores what it cannot use', () => {
    for (const v of [undefined, '', '-5', '1.5', 'soon', 'Wed, 99 Foo']) expect(parseRetryAfterMs(v, now)).toBeUndefined();
  });
});

describe('decodeRpcStatusMessage', () => {
  it('reads the message of a google.rpc.Status and gives up on garbage', () => {
    const msg = Buffer.from('invalid span id');
    // code = 3 (field 1 varint), message (field 2, length-delimited)
    const status = Buffer.concat([Buffer.from([0x08, 0x03, 0x12, msg.length]), msg]);
    expect(decodeRpcStatusMessage(status)).toBe('invalid span id');
    expect(decodeRpcStatusMessage(Buffer.from('plain text error'))).toBeUndefined();
    expect(decodeRpcStatusMessage(Buffer.from([0x12, 0x40, 0x41]))).toBeUndefined();
  });
});
