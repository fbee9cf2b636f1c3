/**
 * An independent decoder for OTLP ExportTraceServiceRequest protobuf bodies, for tests only.
 * Written from the .proto field numbers (opentelemetry/proto/trace/v1/trace.proto), not from the
 * serializer's code, so the round-trip tests check the wire format rather than the serializer
 * against itself. Timestamps decode to bigint: exactness is what the tests assert.
 */
type Value = string | number | boolean;

export interface DecodedSpan {
  traceId: string;
  spanId: string;
  traceState: string;
  parentSpanId: string;
  name: string;
  /** OTLP enum: 2 = SERVER, 3 = CLIENT. */
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: Record<string, Value>;
  /** OTLP enum: 0 UNSET, 1 OK, 2 ERROR. */
  status: { code: number; message: string };
  flags: number;
  events: number;
  links: number;
}

export interface DecodedScopeSpans {
  scope: { name: string; version: string };
  spans: DecodedSpan[];
}

export interface DecodedResourceSpans {
  resource: Record<string, Value>;
  scopeSpans: DecodedScopeSpans[];
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }
  tag(): { field: number; wire: number } {
    const t = Number(this.varint());
    return { field: t >>> 3, wire: t & 7 };
  }
  bytes(): Uint8Array {
    const len = Number(this.varint());
    const out = this.buf.subarray(this.pos, this.pos + len);
    if (out.length !== len) throw new Error('truncated bytes');
    this.pos += len;
    return out;
  }
  string(): string {
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes());
  }
  fixed64(): bigint {
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, 8).readBigUInt64LE(0);
    this.pos += 8;
    return v;
  }
  double(): number {
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, 8).readDoubleLE(0);
    this.pos += 8;
    return v;
  }
  fixed32(): number {
    const v = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.pos, 4).readUInt32LE(0);
    this.pos += 4;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
}

function fields(buf: Uint8Array, on: (field: number, wire: number, r: Reader) => boolean): void {
  const r = new Reader(buf);
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (!on(field, wire, r)) r.skip(wire);
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function anyValue(buf: Uint8Array): Value {
  let v: Value | undefined;
  fields(buf, (f, w, r) => {
    if (f === 1 && w === 2) v = r.string();
    else if (f === 2 && w === 0) v = r.varint() !== 0n;
    else if (f === 3 && w === 0) v = Number(BigInt.asIntN(64, r.varint()));
    else if (f === 4 && w === 1) v = r.double();
    else return false;
    return true;
  });
  if (v === undefined) throw new Error('unsupported AnyValue');
  return v;
}

function keyValue(buf: Uint8Array, into: Record<string, Value>): void {
  let key = '';
  let value: Value | undefined;
  fields(buf, (f, w, r) => {
    if (f === 1 && w === 2) key = r.string();
    else if (f === 2 && w === 2) value = anyValue(r.bytes());
    else return false;
    return true;
  });
  if (value === undefined) throw new Error(`attribute ${key} has no value`);
  into[key] = value;
}

function span(buf: Uint8Array): DecodedSpan {
  const s: DecodedSpan = {
    traceId: '', spanId: '', traceState: '', parentSpanId: '', name: '', kind: 0,
    startTimeUnixNano: 0n, endTimeUnixNano: 0n, attributes: {}, status: { code: 0, message: '' },
    flags: 0, events: 0, links: 0,
  };
  fields(buf, (f, w, r) => {
    switch (f) {
      case 1: s.traceId = hex(r.bytes()); return true;
      case 2: s.spanId = hex(r.bytes()); return true;
      case 3: s.traceState = r.string(); return true;
      case 4: s.parentSpanId = hex(r.bytes()); return true;
      case 5: s.name = r.string(); return true;
      case 6: s.kind = Number(r.varint()); return true;
      case 7: s.startTimeUnixNano = r.fixed64(); return true;
      case 8: s.endTimeUnixNano = r.fixed64(); return true;
      case 9: keyValue(r.bytes(), s.attributes); return true;
      case 11: r.bytes(); s.events++; return true;
      case 13: r.bytes(); s.links++; return true;
      case 15:
        fields(r.bytes(), (sf, sw, sr) => {
          if (sf === 2 && sw === 2) s.status.message = sr.string();
          else if (sf === 3 && sw === 0) s.status.code = Number(sr.varint());
          else return false;
          return true;
        });
        return true;
      case 16: if (w !== 5) return false; s.flags = r.fixed32(); return true;
      default: return false;
    }
  });
  return s;
}

function scopeSpans(buf: Uint8Array): DecodedScopeSpans {
  const out: DecodedScopeSpans = { scope: { name: '', version: '' }, spans: [] };
  fields(buf, (f, w, r) => {
    if (f === 1 && w === 2) {
      fields(r.bytes(), (sf, sw, sr) => {
        if (sf === 1 && sw === 2) out.scope.name = sr.string();
        else if (sf === 2 && sw === 2) out.scope.version = sr.string();
        else return false;
        return true;
      });
    } else if (f === 2 && w === 2) out.spans.push(span(r.bytes()));
    else return false;
    return true;
  });
  return out;
}

function resourceSpans(buf: Uint8Array): DecodedResourceSpans {
  const out: DecodedResourceSpans = { resource: {}, scopeSpans: [] };
  fields(buf, (f, w, r) => {
    if (f === 1 && w === 2) {
      fields(r.bytes(), (rf, rw, rr) => {
        if (rf === 1 && rw === 2) keyValue(rr.bytes(), out.resource);
        else return false;
        return true;
      });
    } else if (f === 2 && w === 2) out.scopeSpans.push(scopeSpans(r.bytes()));
    else return false;
    return true;
  });
  return out;
}

/** ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; } */
export function decodeTraceRequest(body: Uint8Array): DecodedResourceSpans[] {
  const out: DecodedResourceSpans[] = [];
  fields(body, (f, w, r) => {
    if (f === 1 && w === 2) out.push(resourceSpans(r.bytes()));
    else return false;
    return true;
  });
  return out;
}

/** All spans of a request, each with its resource attributes and scope, in wire order. */
export function flattenSpans(
  request: DecodedResourceSpans[],
): Array<DecodedSpan & { resource: Record<string, Value>; scope: { name: string; version: string } }> {
  return request.flatMap((rs) =>
    rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, resource: rs.resource, scope: ss.scope }))),
  );
}
