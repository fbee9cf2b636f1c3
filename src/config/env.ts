/**
 * Reading the environment, the OpenTelemetry way, for every part of the config layer: a variable
 * set to an empty or blank value counts as unset.
 */
export type Env = Readonly<Record<string, string | undefined>>;
export type Warn = (message: string) => void;

/** An environment variable's value, trimmed; `undefined` when unset or empty (the spec treats both alike). */
export function envValue(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}
