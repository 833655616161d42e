// Secrets from files: every secret variable NAME may instead be given as NAME_FILE, the path of a
// file holding it (Docker and Kubernetes mount secrets as files; systemd passes credentials so),
// which keeps the secret out of the process environment, `ps e` and container inspection.
import { readFileSync } from 'node:fs';
import type { ErrorDetail } from './config-error.js';

/** The variables that hold secrets: each also reads from <NAME>_FILE. */
export const SECRET_VARIABLES = ['REDIS_URL', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'DATABASE_URL', 'DATABASE_PASSWORD', 'CAELUM_API_TOKEN', 'CAELUM_READ_TOKEN'] as const;

export type ReadSecret = (file: string) => string;

const readUtf8: ReadSecret = (file) => readFileSync(file, 'utf8');

/**
 * The environment with each NAME_FILE replaced by NAME, read from its file (the trailing line
 * break that editors and `echo` leave is not part of the secret), and the problems found. The
 * problems never quote a secret.
 */
export function resolveSecretFiles(
  source: Record<string, string | undefined>,
  read: ReadSecret = readUtf8,
): { env: Record<string, string | undefined>; problems: ErrorDetail[] } {
  const env = { ...source };
  const problems: ErrorDetail[] = [];
  for (const name of SECRET_VARIABLES) {
    const fileVar = `${name}_FILE`;
    const file = env[fileVar];
    delete env[fileVar];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      problems.push({ path: fileVar, message: `${name} is set as well; set one of them` });
      continue;
    }
    let value: string;
    try {
      value = read(file).replace(/[\r\n]+$/, '');
    } catch (err) {
      problems.push({ path: fileVar, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err))}` });
      continue;
    }
    if (value === '') problems.push({ path: fileVar, message: `${file} is empty` });
    else env[name] = value;
  }
  return { env, problems };
}
