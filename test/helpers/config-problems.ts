import { ConfigError } from '../../src/errors.js';

/** The `path: message` lines of the ConfigError that `fn` throws; fails when it throws none. */
export function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  throw new Error('expected a ConfigError');
}
