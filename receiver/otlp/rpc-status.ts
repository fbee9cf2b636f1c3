/**
 * Reading `google.rpc.Status` (and the `google.rpc.RetryInfo` inside its details) from protobuf
 * bytes. An OTLP/HTTP server answers a failed protobuf request with a Status body (field 2 =
 * message); a gRPC server may attach one as `grpc-status-details-bin`, whose details can carry
 * RetryInfo (how long to wait before retrying, which the OTLP spec asks clients to honour). A few
 * lines of wire-format reading instead of a protobuf dependency: anything unexpected yields
 * `undefined` and the caller falls back (raw text, its own backoff).
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

const STATUS_MESSAGE_FIELD = 2;
const STATUS_DETAILS_FIELD = 3;
const ANY_TYPE_URL_FIELD = 1;
const ANY_VALUE_FIELD = 2;
const RETRY_INFO_DELAY_FIELD = 1;
const DURATION_SECONDS_FIELD = 1;
const DURATION_NANOS_FIELD = 2;
const RETRY_INFO_TYPE = 'type.googleapis.com/google.rpc.RetryInfo';

type FieldValue = number | Uint8Array;

/** The top-level fields of a message, in order; `undefined` when the bytes are not valid protobuf. */
export function protoFields(bytes: Uint8Array): Array<[field: number, value: FieldValue]> | undefined {
  const out: Array<[number, FieldValue]> = [];
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
          out.push([field, varint()]);
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
          out.push([field, bytes.subarray(pos, pos + len)]);
          pos += len;
          break;
        }
        default:
          return undefined;
      }
    }
  } catch {
    return undefined;
  }
  return pos === bytes.length ? out : undefined;
}

function utf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

export function decodeRpcStatusMessage(bytes: Uint8Array): string | undefined {
  for (const [field, value] of protoFields(bytes) ?? []) {
    if (field === STATUS_MESSAGE_FIELD && value instanceof Uint8Array) return utf8(value);
  }
  return undefined;
}

/** The RetryInfo delay in a google.rpc.Status, in milliseconds; `undefined` when there is none. */
export function decodeRetryInfoDelayMs(statusBytes: Uint8Array): number | undefined {
  for (const [field, any] of protoFields(statusBytes) ?? []) {
    if (field !== STATUS_DETAILS_FIELD || !(any instanceof Uint8Array)) continue;
    const anyFields = protoFields(any) ?? [];
    const typeUrl = anyFields.find(([f]) => f === ANY_TYPE_URL_FIELD)?.[1];
    const value = anyFields.find(([f]) => f === ANY_VALUE_FIELD)?.[1];
    if (!(typeUrl instanceof Uint8Array) || utf8(typeUrl) !== RETRY_INFO_TYPE) continue;
    if (!(value instanceof Uint8Array)) return 0;
    const delay = (protoFields(value) ?? []).find(([f]) => f === RETRY_INFO_DELAY_FIELD)?.[1];
    if (!(delay instanceof Uint8Array)) return 0;
    let seconds = 0;
    let nanos = 0;
    for (const [f, v] of protoFields(delay) ?? []) {
      if (f === DURATION_SECONDS_FIELD && typeof v === 'number') seconds = v;
      if (f === DURATION_NANOS_FIELD && typeof v === 'number') nanos = v;
    }
    return Math.max(0, Math.round(seconds * 1000 + nanos / 1e6));
  }
  return undefined;
}
