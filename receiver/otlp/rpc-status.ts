/**
 * The message of a `google.rpc.Status` body. An OTLP/HTTP server answers a failed protobuf request
 * with a protobuf-encoded Status (field 2 = message); decoding just that field turns
 * "HTTP 400: <binary>" into a readable reason. A few lines of wire-format reading instead of a
 * protobuf dependency: anything unexpected yields `undefined` and the caller shows raw text.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;
const STATUS_MESSAGE_FIELD = 2;

export function decodeRpcStatusMessage(bytes: Uint8Array): string | undefined {
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= bytes.length || shift > 49) throw new RangeError('truncated varint');
      const b = bytes[pos++];
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  try {
    while (pos < bytes.length) {
      const tag = varint();
      const field = Math.floor(tag / 8);
      switch (tag % 8) {
        case WIRE_VARINT:
          varint();
          break;
        case WIRE_FIXED64:
          pos += 8;
          break;
        case WIRE_FIXED32:
          pos += 4;
          break;
        case WIRE_LENGTH_DELIMITED: {
          const len = varint();
          if (pos + len > bytes.length) return undefined;
          const chunk = bytes.subarray(pos, pos + len);
          pos += len;
          if (field === STATUS_MESSAGE_FIELD) return new TextDecoder('utf-8', { fatal: true }).decode(chunk);
          break;
        }
        default:
          return undefined;
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}
