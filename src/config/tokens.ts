// API tokens: who may call the API, by name, with which scopes. Two come from the environment
// (CAELUM_API_TOKEN, named "operator", and CAELUM_READ_TOKEN, named "reader"); any number more
// from the tokens file (CAELUM_TOKENS_FILE), which holds only their sha256 digests.
//
// A fast hash is right here, unlike for passwords: a token is 32 random bytes, far beyond any
// guessing, so a slow hash (bcrypt, scrypt) would buy nothing against a stolen file and would
// cost every request a few milliseconds of CPU.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, issuesToDetails } from './config-error.js';

/**
 * What a token may do. `operate` includes every other scope and `enqueue` includes `read` (a
 * script that adds jobs watches them, and the checkpoints they make); `report-loads` is FinColl's:
 * the checkpoint feed and load reports, nothing else.
 */
export const SCOPES = ['read', 'report-loads', 'enqueue', 'operate'] as const;
export type Scope = (typeof SCOPES)[number];

const INCLUDES: Record<Scope, readonly Scope[]> = {
  read: ['read'],
  'report-loads': ['report-loads'],
  enqueue: ['enqueue', 'read'],
  operate: SCOPES,
};

/** Every scope a token with these scopes has, the included ones too, in SCOPES order. */
export function effectiveScopes(scopes: readonly Scope[]): Scope[] {
  const all = new Set(scopes.flatMap((s) => INCLUDES[s]));
  return SCOPES.filter((s) => all.has(s));
}

export interface TokenEntry {
  name: string;
  scopes: Scope[];
  /** `sha256:<64 hex digits>` of the token. */
  hash: string;
}

/** Token values as the environment variables take them: printable, no spaces, 16+ characters. */
export const tokenValue = z
  .string()
  .min(16, 'must be at least 16 characters')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');

export const TOKEN_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token, 'utf8').digest('hex')}`;
}

const entrySchema = z.strictObject({
  name: z.string().regex(TOKEN_NAME, 'must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit'),
  scopes: z.array(z.enum(SCOPES, { error: `must be one of ${SCOPES.join(', ')}` })).min(1, 'name at least one scope'),
  hash: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be sha256:<64 lower-case hex digits> (caelum-scheduler token hash prints it)'),
});

const fileSchema = z.strictObject({ tokens: z.array(entrySchema) });

/** Names and digests must each be unique, across the file and the environment's tokens. */
function duplicates(entries: readonly TokenEntry[]): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  const names = new Map<string, number>();
  const hashes = new Map<string, number>();
  entries.forEach((e, i) => {
    const name = names.get(e.name);
    if (name !== undefined) problems.push({ path: `tokens.${i}.name`, message: `"${e.name}" is used twice (also tokens.${name}); names say who did what, so each is one token's` });
    names.set(e.name, i);
    const hash = hashes.get(e.hash);
    if (hash !== undefined) problems.push({ path: `tokens.${i}.hash`, message: `the same token as tokens.${hash} ("${entries[hash]!.name}")` });
    hashes.set(e.hash, i);
  });
  return problems;
}

/** Parses a tokens file's text (YAML, and so JSON too). */
export function parseTokensFile(text: string, source: string): TokenEntry[] {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw new ConfigError(source, [{ path: '', message: `not YAML or JSON: ${err instanceof Error ? err.message : String(err)}` }]);
  }
  const result = fileSchema.safeParse(value);
  if (!result.success) throw new ConfigError(source, issuesToDetails(result.error.issues));
  const problems = duplicates(result.data.tokens);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return result.data.tokens;
}

export function loadTokensFile(file: string): TokenEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError('CAELUM_TOKENS_FILE', [{ path: '', message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` }]);
  }
  return parseTokensFile(text, file);
}

/**
 * Every token the API accepts: the environment's two (when set) and the file's. A file entry
 * may not take the name or the value of an environment token.
 */
export function allTokens(env: { apiToken?: string | undefined; readToken?: string | undefined }, file: readonly TokenEntry[], source: string): TokenEntry[] {
  const fromEnv: (TokenEntry & { variable: string })[] = [
    ...(env.apiToken ? [{ name: 'operator', scopes: ['operate' as const], hash: hashToken(env.apiToken), variable: 'CAELUM_API_TOKEN' }] : []),
    ...(env.readToken ? [{ name: 'reader', scopes: ['read' as const], hash: hashToken(env.readToken), variable: 'CAELUM_READ_TOKEN' }] : []),
  ];
  const problems = fromEnv.flatMap((e) => {
    const byName = file.findIndex((f) => f.name === e.name);
    const byHash = file.findIndex((f) => f.hash === e.hash);
    return [
      ...(byName >= 0 ? [{ path: `tokens.${byName}.name`, message: `"${e.name}" names the token of ${e.variable}; choose another name` }] : []),
      ...(byHash >= 0 ? [{ path: `tokens.${byHash}.hash`, message: `the same token as ${e.variable}` }] : []),
    ];
  });
  if (problems.length > 0) throw new ConfigError(source, problems);
  return [...fromEnv.map(({ variable: _, ...e }) => e), ...file];
}
