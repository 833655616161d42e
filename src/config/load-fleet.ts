// Loads workers.config.ts (or any module whose default export is a fleet), validates it, and
// resolves its relative paths against the file's folder so that every process agrees on them.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, issuesToDetails } from './config-error.js';
import { checkFleetRules } from './fleet-rules.js';
import { fleetSchema, type Fleet } from './fleet-schema.js';

export interface LoadedFleet extends Fleet {
  /** Absolute path of the file it came from ("(inline)" for configs built in code). */
  source: string;
}

/** Validates a fleet value; relative paths resolve against baseDir. */
export function parseFleet(value: unknown, source: string, baseDir: string): LoadedFleet {
  const result = fleetSchema.safeParse(value);
  if (!result.success) throw new ConfigError(source, issuesToDetails(result.error.issues));
  const problems = checkFleetRules(result.data);
  if (problems.length > 0) throw new ConfigError(source, problems);
  const fleet = result.data;
  const abs = (p: string) => path.resolve(baseDir, p);
  for (const model of Object.values(fleet.models)) {
    model.checkpointDir = abs(model.checkpointDir);
    const commands = [model.train, model.validate, ...(model.deployTest ? [model.deployTest.service, model.deployTest.accuracy] : [])];
    for (const c of commands) c.cwd = abs(c.cwd ?? '.');
  }
  for (const c of [fleet.backtest, fleet.dataSync]) c.cwd = abs(c.cwd ?? '.');
  return { ...fleet, source };
}

/** Imports the module at an absolute path; the CLI passes one that also loads TypeScript (src/import-config.ts). */
export type ModuleImporter = (file: string) => Promise<unknown>;

const importNatively: ModuleImporter = (file) => import(pathToFileURL(file).href);

export async function loadFleet(file: string, cwd = process.cwd(), importModule = importNatively): Promise<LoadedFleet> {
  const absolute = path.resolve(cwd, file);
  if (!existsSync(absolute)) {
    throw new ConfigError(absolute, [{ path: '', message: 'file not found (set CAELUM_CONFIG to its path)' }]);
  }
  let mod: { default?: unknown };
  try {
    mod = (await importModule(absolute)) as { default?: unknown };
  } catch (err) {
    throw new ConfigError(absolute, [{ path: '', message: `cannot load: ${err instanceof Error ? err.message : String(err)}` }]);
  }
  if (mod.default === undefined) {
    throw new ConfigError(absolute, [{ path: '', message: 'has no default export (export default defineConfig({...}))' }]);
  }
  return parseFleet(mod.default, absolute, path.dirname(absolute));
}
