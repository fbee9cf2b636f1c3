/**
 * Sets `const volatile` globals before load: reads the .rodata DATASEC layout from the object's
 * BTF through libbpf and writes the values by name into libbpf's own .rodata image. The layout
 * parsing and value encoding are koffi-free (../rodata.ts) so unit tests cover them.
 */
import koffi from 'koffi';
import {
  BTF_KIND_DATASEC,
  BTF_TYPE_HEADER_SIZE,
  BTF_VAR_SECINFO_SIZE,
  parseBtfTypeHeader,
  parseVarSecinfos,
  writeRodata,
  type RodataVar,
} from '../rodata';
import type { OpenOptions } from '../types';
import { bpfError } from './errors';
import type { Native, Ptr } from './native';

/** Reads the .rodata DATASEC layout from the object's BTF and writes the values by name. */
export function setRodata(n: Native, obj: bigint, path: string, values: NonNullable<OpenOptions['rodata']>): void {
  const fail = (why: string): never => {
    throw bpfError(n, 'ERR_BPF_OPEN', `set rodata in ${path}: ${why}`);
  };
  const map = n.findMap(obj, '.rodata') as Ptr;
  if (map === null) return fail('object has no .rodata (no const volatile globals)');
  const sizeOut = [0];
  const image = n.mapInitialValue(map, sizeOut) as Ptr;
  const imageSize = sizeOut[0] ?? 0;
  if (image === null || imageSize === 0) return fail('no initial value for .rodata');
  const btf = n.objectBtf(obj) as Ptr;
  if (btf === null) return fail('object has no BTF (build with clang -g)');
  const secId = n.btfFindByNameKind(btf, '.rodata', BTF_KIND_DATASEC) as number;
  if (secId <= 0) return fail('no .rodata DATASEC in BTF');
  const readBytes = (ptr: bigint, len: number): Buffer => {
    const b = Buffer.allocUnsafe(len);
    n.memcpy(b, ptr, len);
    return b;
  };
  const secPtr = n.btfTypeById(btf, secId) as Ptr;
  if (secPtr === null) return fail(`BTF type ${secId} missing`);
  const header = parseBtfTypeHeader(readBytes(secPtr, BTF_TYPE_HEADER_SIZE));
  const infos = parseVarSecinfos(readBytes(secPtr, BTF_TYPE_HEADER_SIZE + header.vlen * BTF_VAR_SECINFO_SIZE), header.vlen);
  const vars: RodataVar[] = infos.map((info) => {
    const varPtr = n.btfTypeById(btf, info.type) as Ptr;
    if (varPtr === null) return fail(`BTF type ${info.type} missing`);
    const varHeader = parseBtfTypeHeader(readBytes(varPtr, BTF_TYPE_HEADER_SIZE));
    const name = (n.btfNameByOffset(btf, varHeader.nameOff) as string | null) ?? '';
    return { name, offset: info.offset, size: info.size };
  });
  // A Buffer over libbpf's own .rodata image (no copy): what we write is what gets loaded.
  const view = Buffer.from(koffi.view(image, imageSize));
  writeRodata(path, view, vars, values);
}
