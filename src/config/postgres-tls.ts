// TLS to PostgreSQL, from DATABASE_URL's libpq parameters (sslmode, sslrootcert, sslcert,
// sslkey) with libpq's meaning. They are taken out of the URL before the driver sees it: the
// driver's own reading differs from libpq's (it treats `require` as `verify-full`, and reads
// the files itself, failing with a stack rather than a line naming the parameter).
import { readFileSync } from 'node:fs';
import type { ErrorDetail } from './config-error.js';

export const SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** What the driver's `ssl` option gets: PEM contents read at start, and how much to verify. */
export interface PostgresTls {
  mode: Exclude<SslMode, 'disable'>;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

const isSslMode = (mode: string): mode is SslMode => (SSL_MODES as readonly string[]).includes(mode);

const PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * The URL without its TLS parameters, and the TLS they ask for (undefined: none). Like libpq,
 * `require` with a root certificate verifies the chain (verify-ca). `prefer` and `allow` are
 * refused: they fall back to plain text, which is what an attacker on the path would arrange.
 */
export function postgresTls(url: string): { url: string; tls: PostgresTls | undefined; problems: ErrorDetail[] } {
  const u = new URL(url);
  const p = Object.fromEntries(PARAMS.map((name) => [name, u.searchParams.get(name) ?? undefined])) as Record<(typeof PARAMS)[number], string | undefined>;
  for (const name of PARAMS) u.searchParams.delete(name);
  const stripped = u.toString();
  const problems: ErrorDetail[] = [];
  const at = (name: string) => `DATABASE_URL ${name}`;
  const mode = p.sslmode ?? 'disable';
  if (!isSslMode(mode)) {
    const why = mode === 'prefer' || mode === 'allow' ? ' (it falls back to an unencrypted connection)' : '';
    problems.push({ path: at('sslmode'), message: `"${mode}" is not supported${why}; use ${SSL_MODES.join(', ')}` });
    return { url: stripped, tls: undefined, problems };
  }
  if (mode === 'disable' || !isSslMode(mode)) {
    for (const name of ['sslrootcert', 'sslcert', 'sslkey'] as const) {
      if (p[name]) problems.push({ path: at(name), message: 'TLS is off: add sslmode=verify-full (or verify-ca, require)' });
    }
    return { url: stripped, tls: undefined, problems };
  }
  if (Boolean(p.sslcert) !== Boolean(p.sslkey)) problems.push({ path: at(p.sslcert ? 'sslkey' : 'sslcert'), message: 'a client certificate needs its key, and a key its certificate' });
  const read = (name: string, file: string | undefined) => {
    // libpq's `system`: the system's certificate authorities, which is what no CA means here.
    if (!file || (name === 'sslrootcert' && file === 'system')) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      problems.push({ path: at(name), message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
      return undefined;
    }
  };
  const ca = read('sslrootcert', p.sslrootcert);
  const tls: PostgresTls = {
    mode: mode === 'require' && ca ? 'verify-ca' : mode,
    ca,
    cert: read('sslcert', p.sslcert),
    key: read('sslkey', p.sslkey),
  };
  return { url: stripped, tls, problems };
}
