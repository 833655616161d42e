// `caelum-scheduler token new|hash`: make an API token and the line of the tokens file that
// grants it (CAELUM_TOKENS_FILE holds digests only, so the file may be read without giving
// anything away). Works offline: no server is asked.
import { randomBytes } from 'node:crypto';
import { hashToken, SCOPES, TOKEN_NAME, tokenValue, type Scope } from '../config/tokens.js';
import { ValidationError } from '../errors.js';
import { strictArgs } from './enqueue.js';

export const TOKEN_HELP = `Usage: caelum-scheduler token new --name <name> --scope <scope> [--scope <scope>...]
       caelum-scheduler token hash < file-holding-the-token

new   makes a random token and prints it, then the entry of the tokens file (CAELUM_TOKENS_FILE)
      that grants it. Give the token to its holder; the file keeps only its sha256.
hash  reads a token from standard input (one line) and prints its sha256:<hex> digest, for a
      token made elsewhere (16+ printable characters, no spaces).

Scopes:
  read          read everything (GET routes)
  report-loads  FinColl: read the checkpoint feed and report loads, nothing else
  enqueue       scripts and CI: add jobs and research pipelines and watch them (includes read)
  operate       everything: cancel, retry, promote, roll back, pause, drain, Bull Board

Options:
  --name <name>    who holds it (1-64 letters, digits, ".", "_", "-"); recorded as who did what
  --scope <scope>  a scope to grant (repeat for several)
  -h, --help       this text`;

/** A token: 32 random bytes, so that a fast hash of it cannot be reversed by guessing. */
export const newToken = () => `cae_${randomBytes(32).toString('base64url')}`;

function entryYaml(name: string, scopes: Scope[], hash: string): string {
  return `  - name: ${name}\n    scopes: [${scopes.join(', ')}]\n    hash: ${hash}\n`;
}

async function readAll(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) text += typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
  return text;
}

/** Returns the exit code. */
export async function tokenCommand(args: string[], io: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream }): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'hash') {
    strictArgs(rest, {});
    // One line: the trailing newline of `echo` or of a secret file is not part of the token.
    const token = (await readAll(io.stdin)).replace(/\r?\n$/, '');
    const parsed = tokenValue.safeParse(token);
    if (!parsed.success) throw new ValidationError(`the token on standard input ${parsed.error.issues[0]?.message ?? 'is not valid'}`);
    io.stdout.write(`${hashToken(token)}\n`);
    return 0;
  }
  if (sub === 'new') {
    const { values, positionals } = strictArgs(rest, { name: { type: 'string' }, scope: { type: 'string', multiple: true } });
    if (positionals.length > 0) throw new ValidationError(`token new takes no arguments (got ${positionals.join(' ')})`);
    const name = values.name;
    if (typeof name !== 'string' || !TOKEN_NAME.test(name)) {
      throw new ValidationError('--name: say who holds the token (1-64 letters, digits, ".", "_" or "-", starting with a letter or digit)');
    }
    const scopes = (Array.isArray(values.scope) ? values.scope : []).filter((s): s is string => typeof s === 'string');
    if (scopes.length === 0) throw new ValidationError(`--scope: grant at least one of ${SCOPES.join(', ')}`);
    const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (unknown.length > 0) throw new ValidationError(`--scope: unknown scope ${unknown.map((s) => `"${s}"`).join(', ')}; known: ${SCOPES.join(', ')}`);
    const token = newToken();
    io.stdout.write(
      `token for ${name} (shown once; give it to its holder):\n${token}\n\n` +
        `entry for the tokens file (under "tokens:"):\n${entryYaml(name, scopes as Scope[], hashToken(token))}`,
    );
    return 0;
  }
  throw new ValidationError(`token: expected "new" or "hash"${sub ? `, got "${sub}"` : ''} (caelum-scheduler token --help)`);
}
