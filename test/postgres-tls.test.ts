// TLS to PostgreSQL, against a PostgreSQL of this test's own (never the shared cluster) that
// accepts TLS connections only, with a certificate for `localhost` made here: each sslmode does
// what libpq's does, and the service migrates through verify-full.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../src/config/env.js';
import { createPool } from '../src/registry/pool.js';
import { makeCa, type TestCa } from './helpers/certificates.js';
import { problemsOf } from './helpers/config-problems.js';
import { testLogger } from './helpers/logger.js';
import { PrivatePostgres, postgresBin } from './helpers/private-postgres.js';
import { BIN } from './helpers/service-process.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-pgtls-'));
let ca: TestCa;
let otherCa: TestCa;
let client: { cert: string; key: string };
let server: PrivatePostgres;

beforeAll(async () => {
  ca = await makeCa(mkdtempSync(path.join(dir, 'ca-')));
  otherCa = await makeCa(mkdtempSync(path.join(dir, 'other-')), 'another CA');
  // The name the server answers to is localhost only: 127.0.0.1 is not in the certificate.
  const cert = await ca.issue('postgres-server', 'localhost', ['DNS:localhost']);
  client = await ca.issue('certuser', 'certuser');
  server = await PrivatePostgres.start({
    settings: { ssl: 'on', ssl_cert_file: 'postgres-server.crt', ssl_key_file: 'postgres-server.key', ssl_ca_file: path.basename(ca.ca) },
    files: [cert.cert, cert.key, ca.ca],
    hba: [
      // certuser logs in by its client certificate; everyone else over TLS without one; nothing in plain text.
      'hostssl all certuser 127.0.0.1/32 cert',
      'hostssl all all 127.0.0.1/32 trust',
      'host all all 0.0.0.0/0 reject',
    ],
  });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Connects with the environment's DATABASE_URL as the service would, and says whether TLS carried it. */
async function connect(url: string, sql = 'select ssl from pg_stat_ssl where pid = pg_backend_pid()'): Promise<Record<string, unknown>> {
  const env = parseEnv({ DATABASE_URL: url });
  const pool = createPool(env.databaseUrl!, testLogger, { max: 1, tls: env.databaseTls, connectTimeoutMs: 5000 });
  try {
    const { rows } = await pool.query(sql);
    return rows[0] ?? {};
  } catch (err) {
    const e = err as Error & { cause?: Error };
    return { error: e.cause?.message ?? e.message };
  } finally {
    await pool.end();
  }
}

const url = (host: string, params: string, user = 'postgres') => `postgres://${user}@${host}:${server.port}/postgres?${params}`;

describe.skipIf(!postgresBin())('TLS to PostgreSQL', () => {
  it('verify-full checks the chain and the name; verify-ca the chain only; require neither; disable is refused here', async () => {
    const root = `sslrootcert=${ca.ca}`;
    expect(await connect(url('localhost', `sslmode=verify-full&${root}`))).toEqual({ ssl: true });
    expect(await connect(url('127.0.0.1', `sslmode=verify-full&${root}`))).toEqual({ error: expect.stringMatching(/IP: 127\.0\.0\.1 is not in the cert's list/) });
    expect(await connect(url('127.0.0.1', `sslmode=verify-ca&${root}`))).toEqual({ ssl: true });
    expect(await connect(url('localhost', `sslmode=verify-full&sslrootcert=${otherCa.ca}`))).toEqual({ error: expect.stringMatching(/unable to verify|self[- ]signed|unable to get/i) });
    // libpq's rule: require with a root certificate verifies the chain, so a stranger's CA fails.
    expect(await connect(url('127.0.0.1', `sslmode=require&sslrootcert=${otherCa.ca}`))).toEqual({ error: expect.stringMatching(/unable to verify|self[- ]signed|unable to get/i) });
    expect(await connect(url('127.0.0.1', 'sslmode=require'))).toEqual({ ssl: true });
    expect(await connect(url('localhost', 'sslmode=disable'))).toEqual({ error: expect.stringMatching(/no encryption|pg_hba\.conf rejects/) });
  });

  it('logs in with a client certificate (sslcert, sslkey)', async () => {
    const withCert = `sslmode=verify-full&sslrootcert=${ca.ca}&sslcert=${client.cert}&sslkey=${client.key}`;
    await connect(url('localhost', `sslmode=verify-full&sslrootcert=${ca.ca}`), 'create role certuser login');
    expect(await connect(url('localhost', withCert, 'certuser'))).toEqual({ ssl: true });
    expect(await connect(url('localhost', `sslmode=verify-full&sslrootcert=${ca.ca}`, 'certuser'))).toEqual({ error: expect.stringMatching(/certificate authentication failed|connection requires a valid client certificate/) });
  });

  it('migrates the service through verify-full: caelum-scheduler migrate', async () => {
    const res = await execa('node', [BIN, 'migrate'], {
      env: { DATABASE_URL: url('localhost', `sslmode=verify-full&sslrootcert=${ca.ca}`), CAELUM_DB_SCHEMA: 'caelum_tls', LOG_LEVEL: 'warn' },
      reject: false,
    });
    expect(res.stderr).toBe('');
    expect(res.exitCode).toBe(0);
    const applied = await connect(url('localhost', `sslmode=verify-full&sslrootcert=${ca.ca}`), 'select count(*)::int as n from caelum_tls.caelum_migrations');
    expect(applied.n).toBeGreaterThanOrEqual(8);
  });

  it('names each bad TLS parameter, and refuses modes that fall back to plain text', () => {
    expect(problemsOf(() => parseEnv({ DATABASE_URL: 'postgres://u@h/d?sslmode=prefer' }))).toEqual([
      'DATABASE_URL sslmode: "prefer" is not supported (it falls back to an unencrypted connection); use disable, require, verify-ca, verify-full',
    ]);
    expect(problemsOf(() => parseEnv({ DATABASE_URL: `postgres://u@h/d?sslmode=verify-full&sslrootcert=${path.join(dir, 'missing.crt')}&sslcert=${client.cert}` }))).toEqual([
      'DATABASE_URL sslkey: a client certificate needs its key, and a key its certificate',
      `DATABASE_URL sslrootcert: cannot read ${path.join(dir, 'missing.crt')}: ENOENT`,
    ]);
    expect(problemsOf(() => parseEnv({ DATABASE_URL: `postgres://u@h/d?sslrootcert=${ca.ca}` }))).toEqual(['DATABASE_URL sslrootcert: TLS is off: add sslmode=verify-full (or verify-ca, require)']);
  });
});
