/**
 * Value parsers for ports and byte sizes: the one copy, used by the settings table (flags, YAML,
 * SPANBRIDGE_* variables) and by the delivery resolver (src/config/delivery.ts) alike.
 */

/** A port 1..65535, 'off' for 0 / "off", `undefined` for anything else. */
export function parsePrometheusPort(raw: string | number): number | 'off' | undefined {
  const s = String(raw).trim().toLowerCase();
  if (s === 'off' || s === '0') return 'off';
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 };

/** "67108864", "64MiB", "512 KiB", "1g" -> bytes; `undefined` when unusable. */
export function parseByteSize(raw: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(m[1]) * unit);
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined;
}
