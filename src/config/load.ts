/**
 * Configuration of `spanbridge run`: defaults < YAML file (--config FILE or SPANBRIDGE_CONFIG) <
 * environment < flags, validated once. Every error is ERR_CONFIG and names the bad key (the YAML
 * path with its file, the environment variable, or the flag) and the allowed values.
 *
 * Exception, as the OpenTelemetry specification asks: a bad `OTEL_*` value is warned about and
 * ignored (the next source applies); a typo there must not stop the agent.
 */
import { readFileSync } from 'node:fs';
import type * as Yaml from 'yaml';

/** The YAML parser loads only when a configuration file is given. */
function yaml(): typeof Yaml {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('yaml') as typeof Yaml;
}
import { SpanbridgeError, errorMessage } from '../errors';
import { isContainerIdPrefix, normalizeContainerIdPrefix } from '../discovery/container';
import type { Selection } from '../discovery/selectors';
import { parseResourceAttributes } from '../spans/resource';
import type { RouteOverrides, RoutesSettings, UnmatchedMode } from '../spans/routes/route-policy';
import { DEFAULT_ROUTES } from '../spans/routes/route-policy';
import type { RoutePattern } from '../spans/routes/pattern';
import { envValue } from './env';
import { SELECTION_KEYS, SELECTION_ROUTE_KEYS, SETTINGS, SETTINGS_BY_KEY, type Parsed, type Setting } from './settings';

export type Source = 'default' | 'yaml' | 'env' | 'flag';

/** One entry of the YAML `selections` list (or one selector flag). */
export interface SelectionEntry {
  readonly pid?: number;
  readonly exe?: string;
  readonly openPort?: number;
  /** A container id prefix (lowercase hex). */
  readonly container?: string;
  /** service.name for processes this entry selects (their own OTEL_SERVICE_NAME still wins). */
  readonly serviceName?: string;
  /** `routes`: patterns and unmatched mode for what this entry selects (replacing the global ones). */
  readonly routes?: RouteOverrides;
}

export interface LoadedConfig {
  /** Resolved values by setting key; a key is absent when unset (the default applies downstream). */
  readonly values: Readonly<Record<string, unknown>>;
  /** Where each set value came from; 'env' with `undefined` value: the delivery resolver (delivery.ts) reads it. */
  readonly sources: Readonly<Record<string, Source>>;
  readonly selections: readonly SelectionEntry[];
  readonly selectionSource: 'yaml' | 'flag' | 'none';
  /** The config file used, if any. */
  readonly file?: string;
  readonly warnings: readonly string[];
}

export interface LoadInput {
  /** Flag values by flag name (from node:util parseArgs), selectors included. */
  readonly flags: Readonly<Record<string, string | string[] | boolean | undefined>>;
  readonly env: NodeJS.ProcessEnv;
  readonly readFile?: (path: string) => string;
}

function configError(message: string): SpanbridgeError {
  return new SpanbridgeError('ERR_CONFIG', message);
}

/** Groups (YAML mappings) and their known keys, from the settings table. */
function knownKeys(prefix: string): string[] {
  const out = new Set<string>();
  for (const s of SETTINGS) {
    if (!s.key.startsWith(prefix)) continue;
    out.add(s.key.slice(prefix.length).split('.')[0]);
  }
  if (prefix === '') out.add('selections');
  return [...out];
}

const GROUPS = new Set(SETTINGS.filter((s) => s.key.includes('.')).map((s) => s.key.split('.')[0]));

/** Parses the YAML file into flat `key -> raw value` plus the raw selections. */
export function parseYamlConfig(text: string, file: string): { raw: Map<string, unknown>; selections: SelectionEntry[] } {
  const { isMap, parseDocument } = yaml();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // prettyErrors: the first line reads "<problem> at line L, column C:".
    throw configError(`${file}: invalid YAML: ${doc.errors[0].message.split('\n', 1)[0].replace(/:$/, '')}`);
  }
  const top: unknown = doc.toJS();
  const raw = new Map<string, unknown>();
  const selections: SelectionEntry[] = [];
  if (top === null || top === undefined) return { raw, selections };
  if (!isMap(doc.contents) || typeof top !== 'object' || Array.isArray(top)) {
    throw configError(`${file}: the top level must be a mapping of settings (keys: ${knownKeys('').join(', ')})`);
  }
  for (const [k, v] of Object.entries(top as Record<string, unknown>)) {
    if (k === 'selections') {
      selections.push(...parseSelections(v, file));
    } else if (GROUPS.has(k)) {
      if (v === null) continue;
      if (typeof v !== 'object' || Array.isArray(v)) {
        throw configError(`${file}: ${k}: expected a mapping (keys: ${knownKeys(`${k}.`).join(', ')})`);
      }
      for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) {
        const key = `${k}.${k2}`;
        if (!SETTINGS_BY_KEY.has(key)) {
          throw configError(`${file}: unknown key '${key}' (known keys under ${k}: ${knownKeys(`${k}.`).join(', ')})`);
        }
        if (v2 !== null) raw.set(key, v2);
      }
    } else if (SETTINGS_BY_KEY.has(k)) {
      if (v !== null) raw.set(k, v);
    } else {
      throw configError(`${file}: unknown key '${k}' (known keys: ${knownKeys('').join(', ')})`);
    }
  }
  return { raw, selections };
}

function parseSelections(v: unknown, file: string): SelectionEntry[] {
  if (v === null) return [];
  if (!Array.isArray(v)) throw configError(`${file}: selections: expected a list like [{exe: 'api', service_name: checkout}, {open_port: 8080}]`);
  return v.map((entry, i) => {
    const where = `${file}: selections[${i}]`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw configError(`${where}: expected a mapping with one of pid, exe, open_port, container (and optionally service_name)`);
    }
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!(SELECTION_KEYS as readonly string[]).includes(k)) {
        throw configError(`${where}: unknown key '${k}' (known keys: ${SELECTION_KEYS.join(', ')})`);
      }
    }
    const selectors = ['pid', 'exe', 'open_port', 'container'].filter((k) => e[k] !== undefined && e[k] !== null);
    if (selectors.length !== 1) {
      throw configError(`${where}: give exactly one of pid, exe, open_port, container (found ${selectors.length === 0 ? 'none' : selectors.join(', ')})`);
    }
    const out: { pid?: number; exe?: string; openPort?: number; container?: string; serviceName?: string; routes?: RouteOverrides } = {};
    if (e.routes !== undefined && e.routes !== null) out.routes = selectionRoutes(`${where}.routes`, e.routes);
    if (e.container !== undefined && e.container !== null) out.container = containerId(`${where}.container`, e.container);
    if (e.pid !== undefined && e.pid !== null) out.pid = integer(`${where}.pid`, e.pid, 1, 2 ** 22);
    if (e.open_port !== undefined && e.open_port !== null) out.openPort = integer(`${where}.open_port`, e.open_port, 1, 65535);
    if (e.exe !== undefined && e.exe !== null) {
      if (typeof e.exe !== 'string' || e.exe.trim() === '') throw configError(`${where}.exe: expected a non-empty glob like 'api' or '/srv/*/api'`);
      out.exe = e.exe.trim();
    }
    if (e.service_name !== undefined && e.service_name !== null) {
      if (typeof e.service_name !== 'string' || e.service_name.trim() === '') {
        throw configError(`${where}.service_name: expected a non-empty string`);
      }
      out.serviceName = e.service_name.trim();
    }
    return out;
  });
}

/** A selection entry's `routes: {patterns, unmatched}`, validated with the global settings' parsers. */
function selectionRoutes(where: string, raw: unknown): RouteOverrides {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw configError(`${where}: expected a mapping with ${SELECTION_ROUTE_KEYS.join(' and/or ')}, e.g. {patterns: ['/users/{id}'], unmatched: heuristic}`);
  }
  const out: { patterns?: readonly RoutePattern[]; unmatched?: UnmatchedMode } = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!(SELECTION_ROUTE_KEYS as readonly string[]).includes(k)) {
      throw configError(`${where}: unknown key '${k}' (known keys: ${SELECTION_ROUTE_KEYS.join(', ')})`);
    }
    if (v === null) continue;
    const setting = SETTINGS_BY_KEY.get(`routes.${k}`)!;
    const p = setting.parse(v);
    if (!p.ok) throw configError(`${where}.${k}${p.at ?? ''}: ${p.why ?? `${show(v)} is not ${setting.allowed}`}`);
    if (k === 'patterns') out.patterns = p.value as RoutePattern[];
    else out.unmatched = p.value as UnmatchedMode;
  }
  return out;
}

function integer(where: string, raw: unknown, min: number, max: number): number {
  const s = typeof raw === 'number' || typeof raw === 'string' ? String(raw).trim() : '';
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) {
    throw configError(`${where}: '${String(raw)}' is not an integer in ${min}..${max}`);
  }
  return Number(s);
}

function containerId(where: string, raw: unknown): string {
  const id = normalizeContainerIdPrefix(String(raw));
  if (!isContainerIdPrefix(id)) throw configError(`${where}: '${String(raw)}' is not a container id or id prefix (1 to 64 hex digits)`);
  return id;
}

function flagSelections(flags: LoadInput['flags']): SelectionEntry[] {
  const list = (name: string): string[] => {
    const v = flags[name];
    return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
  };
  return [
    ...list('pid').map((v) => ({ pid: integer('--pid', v, 1, 2 ** 22) })),
    ...list('exe').map((v) => {
      if (v.trim() === '') throw configError('--exe: empty pattern');
      return { exe: v };
    }),
    ...list('open-port').map((v) => ({ openPort: integer('--open-port', v, 1, 65535) })),
    ...list('container').map((v) => ({ container: containerId('--container', v) })),
  ];
}

function show(raw: unknown): string {
  return typeof raw === 'string' ? `'${raw}'` : JSON.stringify(raw);
}

/** Merges and validates every source. Throws ERR_CONFIG naming the bad key and the allowed values. */
export function loadConfig(input: LoadInput): LoadedConfig {
  const { flags, env } = input;
  const warnings: string[] = [];
  const file = (typeof flags.config === 'string' ? flags.config : undefined) ?? envValue(env, 'SPANBRIDGE_CONFIG');
  let yaml: { raw: Map<string, unknown>; selections: SelectionEntry[] } = { raw: new Map(), selections: [] };
  if (file !== undefined) {
    let text: string;
    try {
      text = (input.readFile ?? ((p) => readFileSync(p, 'utf8')))(file);
    } catch (err) {
      throw configError(`${typeof flags.config === 'string' ? '--config' : 'SPANBRIDGE_CONFIG'}: cannot read ${file}: ${errorMessage(err)}`);
    }
    yaml = parseYamlConfig(text, file);
  }

  const values: Record<string, unknown> = {};
  const sources: Record<string, Source> = {};
  for (const s of SETTINGS) {
    const resolved = resolveSetting(s, yaml.raw, file, flags, env, warnings);
    if (resolved) {
      sources[s.key] = resolved.source;
      if (resolved.value !== undefined) values[s.key] = resolved.value;
    }
  }
  // resource_attributes: the environment wins key by key over the YAML mapping.
  const envAttrs = parseResourceAttributes(envValue(env, 'OTEL_RESOURCE_ATTRIBUTES'));
  if (Object.keys(envAttrs).length > 0) {
    values.resource_attributes = { ...((values.resource_attributes as Record<string, string> | undefined) ?? {}), ...envAttrs };
    sources.resource_attributes = 'env';
  }

  const fromFlags = flagSelections(flags);
  const selections = fromFlags.length > 0 ? fromFlags : yaml.selections;
  return {
    values,
    sources,
    selections,
    selectionSource: fromFlags.length > 0 ? 'flag' : yaml.selections.length > 0 ? 'yaml' : 'none',
    file,
    warnings,
  };
}

function resolveSetting(
  s: Setting,
  yamlRaw: Map<string, unknown>,
  file: string | undefined,
  flags: LoadInput['flags'],
  env: NodeJS.ProcessEnv,
  warnings: string[],
): { value: unknown; source: Source } | undefined {
  const flagRaw = s.flag ? flags[s.flag] : undefined;
  if (typeof flagRaw === 'string') {
    const p = s.parse(flagRaw);
    if (!p.ok) throw configError(`--${s.flag}${failure(p, `'${flagRaw}'`, s)}`);
    return { value: p.value, source: 'flag' };
  }
  for (const name of s.env ?? []) {
    const raw = envValue(env, name);
    if (raw === undefined) continue;
    // The delivery resolvers (otlp.ts, delivery.ts) resolve and warn about these; stepping aside keeps env > YAML.
    if (s.bridgeEnv) return { value: undefined, source: 'env' };
    const p = s.key === 'export' ? parseTracesExporter(raw) : s.parse(raw);
    if (p.ok) return { value: p.value, source: 'env' };
    if (name.startsWith('OTEL_')) {
      warnings.push(`config: ignoring ${name}=${JSON.stringify(raw)}: expected ${s.allowed}`);
      continue;
    }
    throw configError(`${name}${failure(p, `'${raw}'`, s)}`);
  }
  if (yamlRaw.has(s.key)) {
    const raw = yamlRaw.get(s.key);
    const p = s.parse(raw);
    if (!p.ok) throw configError(`${file}: ${s.key}${failure(p, show(raw), s)}`);
    return { value: p.value, source: 'yaml' };
  }
  return undefined;
}

/** The part of a bad-value message after the key: `[2]: why` or `: 'value' is not <allowed>`. */
function failure(p: Parsed<unknown>, shown: string, s: Setting): string {
  if (p.ok) return '';
  return `${p.at ?? ''}: ${p.why ?? `${shown} is not ${s.allowed}`}`;
}

/** OTEL_TRACES_EXPORTER is a list (`otlp`, `none`, `console`, ...): otlp in it means otlp. */
function parseTracesExporter(raw: string): { ok: true; value: string } | { ok: false } {
  const names = raw.split(',').map((n) => n.trim().toLowerCase()).filter(Boolean);
  if (names.includes('otlp')) return { ok: true, value: 'otlp' };
  if (names.length > 0 && names.every((n) => n === 'none' || n === 'console')) return { ok: true, value: 'none' };
  return { ok: false };
}

/** The match reason (`pid 7`, `exe api`, `port 8080`, `container 3f2a`) a selection entry produces. */
function reasonOf(e: SelectionEntry): string {
  if (e.pid !== undefined) return `pid ${e.pid}`;
  if (e.exe !== undefined) return `exe ${e.exe}`;
  if (e.container !== undefined) return `container ${e.container}`;
  return `port ${e.openPort}`;
}

/** The route settings: global `routes.*` values and each selection entry's own `routes`. */
export function toRoutesSettings(config: Pick<LoadedConfig, 'values' | 'selections'>): RoutesSettings {
  const v = config.values;
  const bySelection: Record<string, RouteOverrides> = {};
  for (const e of config.selections) {
    const reason = reasonOf(e);
    // The first entry with a given selector decides, as for service_name.
    if (e.routes !== undefined && bySelection[reason] === undefined) bySelection[reason] = e.routes;
  }
  return {
    global: {
      patterns: (v['routes.patterns'] as RoutePattern[] | undefined) ?? DEFAULT_ROUTES.global.patterns,
      unmatched: (v['routes.unmatched'] as UnmatchedMode | undefined) ?? DEFAULT_ROUTES.global.unmatched,
    },
    bySelection,
    maxPerService: (v['routes.max_per_service'] as number | undefined) ?? DEFAULT_ROUTES.maxPerService,
  };
}

/** The selection the process watcher matches, with per-selector service names keyed by match reason. */
export function toSelection(entries: readonly SelectionEntry[]): Selection {
  const serviceNames: Record<string, string> = {};
  const pids: number[] = [];
  const exeGlobs: string[] = [];
  const openPorts: number[] = [];
  const containerIds: string[] = [];
  for (const e of entries) {
    let reason: string;
    if (e.pid !== undefined) {
      pids.push(e.pid);
      reason = `pid ${e.pid}`;
    } else if (e.exe !== undefined) {
      exeGlobs.push(e.exe);
      reason = `exe ${e.exe}`;
    } else if (e.container !== undefined) {
      containerIds.push(e.container);
      reason = `container ${e.container}`;
    } else {
      openPorts.push(e.openPort!);
      reason = `port ${e.openPort}`;
    }
    if (e.serviceName !== undefined && serviceNames[reason] === undefined) serviceNames[reason] = e.serviceName;
  }
  return {
    pids,
    exeGlobs,
    openPorts,
    ...(containerIds.length > 0 ? { containerIds } : {}),
    ...(Object.keys(serviceNames).length > 0 ? { serviceNames } : {}),
  };
}
