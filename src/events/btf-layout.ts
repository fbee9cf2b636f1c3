/**
 * Struct layouts and enum values read from a BPF object's BTF (as `bpftool btf dump -j` prints it).
 * The TypeScript view of every record is generated from this (scripts/gen-structs.ts), and a unit
 * test regenerates it from the freshly built objects, so C and TypeScript never disagree.
 */

export type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64' | 'bytes';

export interface FieldLayout {
  readonly offset: number;
  readonly size: number;
  readonly kind: FieldKind;
}

export interface StructLayout {
  readonly size: number;
  readonly fields: Readonly<Record<string, FieldLayout>>;
}

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  encoding?: string;
  bits_offset?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
  values?: { name: string; val: number }[];
  /** FUNC: 'global' for programs, 'static' for subprograms. */
  linkage?: string;
  /** DATASEC: its variables. */
  vars?: { type_id: number; offset: number; size: number }[];
}

export interface BtfDump {
  types: BtfType[];
}

function byId(dump: BtfDump): Map<number, BtfType> {
  return new Map(dump.types.map((t) => [t.id, t]));
}

function resolve(types: Map<number, BtfType>, id: number): BtfType {
  let t = types.get(id);
  while (t && ['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) {
    t = types.get(t.type_id ?? -1);
  }
  if (!t) throw new Error(`btf: type ${id} not found`);
  return t;
}

function sizeOf(types: Map<number, BtfType>, id: number): number {
  const t = resolve(types, id);
  switch (t.kind) {
    case 'INT':
    case 'ENUM':
    case 'ENUM64':
    case 'STRUCT':
    case 'UNION':
      return t.size ?? 0;
    case 'PTR':
      return 8;
    case 'ARRAY':
      return (t.nr_elems ?? 0) * sizeOf(types, t.type_id ?? -1);
    default:
      throw new Error(`btf: no size for kind ${t.kind}`);
  }
}

function kindOf(types: Map<number, BtfType>, id: number, size: number): FieldKind {
  const t = resolve(types, id);
  if (t.kind === 'INT' || t.kind === 'ENUM') {
    const signed = t.encoding === 'SIGNED';
    const k = `${signed ? 's' : 'u'}${size * 8}`;
    if (['u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64'].includes(k)) return k as FieldKind;
  }
  return 'bytes';
}

export function structLayout(dump: BtfDump, name: string): StructLayout {
  const types = byId(dump);
  const t = dump.types.find((x) => x.kind === 'STRUCT' && x.name === name);
  if (!t || !t.members) throw new Error(`btf: struct ${name} not found`);
  const fields: Record<string, FieldLayout> = {};
  for (const m of t.members) {
    if (m.bitfield_size) throw new Error(`btf: ${name}.${m.name} is a bitfield (not allowed in records)`);
    const size = sizeOf(types, m.type_id);
    fields[m.name] = { offset: m.bits_offset / 8, size, kind: kindOf(types, m.type_id, size) };
  }
  return { size: t.size ?? 0, fields };
}

export function enumValues(dump: BtfDump, name: string): Record<string, number> {
  const t = dump.types.find((x) => x.kind === 'ENUM' && x.name === name);
  if (!t || !t.values) throw new Error(`btf: enum ${name} not found`);
  return Object.fromEntries(t.values.map((v) => [v.name, v.val]));
}

/** What gets generated: object file (basename) -> structs and enums taken from it. */
export const GENERATED: readonly { object: string; structs: string[]; enums: string[] }[] = [
  {
    object: 'go_http.bpf.o',
    structs: ['go_http_server_event', 'go_http_client_event', 'go_http_client_end_event', 'go_offsets'],
    enums: ['record_type', 'drop_reason', 'go_http_server_flag', 'go_http_client_flag', 'go_http_client_flag2'],
  },
  { object: 'proc_events.bpf.o', structs: ['proc_lifecycle_event'], enums: [] },
  {
    object: 'sys_http.bpf.o',
    structs: ['sys_http_conn_event', 'sys_http_data_event', 'sys_http_route_event', 'traced_process', 'py_asyncio_proc', 'node_proc'],
    enums: ['sys_http_drop_reason', 'sys_http_role', 'sys_http_direction', 'sys_http_syscall', 'sys_http_flag', 'sys_http_flag2', 'sys_http_mode', 'sys_http_select'],
  },
  { object: 'sk_inject.bpf.o', structs: ['sk_inject_pending', 'sk_inject_result_key', 'sk_inject_result'], enums: ['sk_inject_outcome'] },
  { object: 'nginx_link.bpf.o', structs: [], enums: ['nginx_link_reason'] },
];

/** What a loader may name in one object: its programs, maps and `const volatile` globals. */
export interface ObjectNames {
  readonly programs: readonly string[];
  readonly maps: readonly string[];
  readonly rodata: readonly string[];
}

/** Programs are the global FUNCs; maps the variables of `.maps`; settings those of `.rodata`. */
export function objectNames(dump: BtfDump): ObjectNames {
  const types = byId(dump);
  const secVars = (sec: string): string[] =>
    (dump.types.find((t) => t.kind === 'DATASEC' && t.name === sec)?.vars ?? []).map((v) => types.get(v.type_id)?.name ?? '').filter(Boolean);
  return {
    programs: dump.types.filter((t) => t.kind === 'FUNC' && t.linkage === 'global').map((t) => t.name ?? ''),
    maps: secVars('.maps'),
    rodata: secVars('.rodata'),
  };
}

function constName(name: string): string {
  return name.toUpperCase();
}

/** Renders the generated TypeScript module from BTF dumps keyed by object basename. */
export function renderGenerated(dumps: Record<string, BtfDump>): string {
  const out: string[] = [
    '// GENERATED by scripts/gen-structs.ts from the BTF of build/bpf/*.bpf.o — do not edit.',
    '// Regenerate with `make gen-structs`; test/unit-built/events/structs.test.ts checks it is current.',
    "import type { StructLayout } from './btf-layout';",
    '',
  ];
  const objectConsts: string[] = [];
  for (const g of GENERATED) {
    const dump = dumps[g.object];
    if (!dump) throw new Error(`no BTF dump for ${g.object}`);
    const names = objectNames(dump);
    const objectConst = `${constName(g.object.replace(/\.bpf\.o$/, ''))}_OBJECT`;
    objectConsts.push(objectConst);
    out.push(`/** What ${g.object} has, by the names its BTF gives: programs, maps, .rodata globals. */`);
    out.push(`export const ${objectConst} = {`);
    out.push(`  file: '${g.object}',`);
    for (const kind of ['programs', 'maps', 'rodata'] as const) {
      out.push(`  ${kind}: {`);
      for (const n of names[kind]) out.push(`    ${n}: '${n}',`);
      out.push('  },');
    }
    out.push('} as const;');
    out.push('');
    for (const s of g.structs) {
      const layout = structLayout(dump, s);
      out.push(`export const ${constName(s)}: StructLayout = {`);
      out.push(`  size: ${layout.size},`);
      out.push('  fields: {');
      for (const [f, l] of Object.entries(layout.fields)) {
        out.push(`    ${f}: { offset: ${l.offset}, size: ${l.size}, kind: '${l.kind}' },`);
      }
      out.push('  },');
      out.push('};');
      out.push('');
    }
    for (const e of g.enums) {
      const values = enumValues(dump, e);
      out.push(`export const ${constName(e)} = {`);
      for (const [k, v] of Object.entries(values)) out.push(`  ${k}: ${v},`);
      out.push('} as const;');
      out.push('');
    }
  }
  out.push('/** Every BPF object the agent loads (the fake backend refuses names they do not have). */');
  out.push(`export const BPF_OBJECTS = [${objectConsts.join(', ')}] as const;`);
  out.push('');
  return out.join('\n');
}
