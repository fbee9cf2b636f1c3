/** `spanbridge run` options parsed as the CLI does, with the config files given in memory. */
import { parseRunArgs, type RunOptions } from '../../src/cli/args';

/** parseRunArgs(argv, env) reading files from `fs` (path -> text); a missing one is ENOENT. */
export function runOptions(argv: string[], env: NodeJS.ProcessEnv = {}, fs: Record<string, string> = {}): RunOptions {
  const o = parseRunArgs(argv, env, (p) => {
    if (!(p in fs)) throw new Error(`ENOENT: no such file '${p}'`);
    return fs[p];
  });
  if (o === 'help') throw new Error('help');
  return o;
}

/** The message of the ERR_CONFIG that `fn` throws; any other outcome fails the test. */
export function configErr(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect((err as { code: string }).code).toBe('ERR_CONFIG');
    return (err as Error).message;
  }
  throw new Error('expected ERR_CONFIG');
}
