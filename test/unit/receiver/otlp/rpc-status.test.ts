import { decodeRetryInfoDelayMs, decodeRpcStatusMessage } from '../../../../receiver/otlp/rpc-status';

/** Minimal protobuf writer for test inputs. */
const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
};
const bytesField = (field: number, b: number[]): number[] => [...varint(field * 8 + 2), ...varint(b.length), ...b];
const intField = (field: number, n: number): number[] => [...varint(field * 8), ...varint(n)];
const str = (s: string): number[] => [...Buffer.from(s)];

function status(message: string, details: number[][]): Uint8Array {
  return Uint8Array.from([...intField(1, 8), ...bytesField(2, str(message)), ...details.flatMap((d) => bytesField(3, d))]);
}
const any = (typeUrl: string, value: number[]): number[] => [...bytesField(1, str(typeUrl)), ...bytesField(2, value)];
const retryInfo = (seconds: number, nanos: number): number[] => bytesField(1, [...intField(1, seconds), ...intField(2, nanos)]);

describe('google.rpc.Status reading', () => {
  it('reads the message', () => {
    expect(decodeRpcStatusMessage(status('slow down', []))).toBe('slow down');
    expect(decodeRpcStatusMessage(Uint8Array.of(0xff))).toBeUndefined();
  });

  it('reads the RetryInfo delay among other details', () => {
    const s = status('slow down', [any('type.googleapis.com/google.rpc.ErrorInfo', bytesField(1, str('x'))), any('type.googleapis.com/google.rpc.RetryInfo', retryInfo(2, 500_000_000))]);
    expect(decodeRetryInfoDelayMs(s)).toBe(2500);
  });

  it('returns undefined without RetryInfo, and for garbage', () => {
    expect(decodeRetryInfoDelayMs(status('x', [any('type.googleapis.com/google.rpc.ErrorInfo', [])]))).toBeUndefined();
    expect(decodeRetryInfoDelayMs(Uint8Array.of(0x0a, 0x05, 0x01))).toBeUndefined();
  });
});
