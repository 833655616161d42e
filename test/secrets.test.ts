// Secrets from files (<NAME>_FILE for every secret variable), and no secret in any log: the api,
// a scheduler and a worker run with every secret set, at LOG_LEVEL=trace, do real work, and
// their whole output is searched for each secret.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../src/config/env.js';
import { SECRET_VARIABLES } from '../src/config/secret-files.js';
import { hashToken } from '../src/config/tokens.js';
import { problemsOf } from './helpers/config-problems.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { PrivateRedis } from './helpers/private-redis.js';
import { DATABASE_URL, uniqueName } from './helpers/servers.js';
import { startService, type ServiceProcess } from './helpers/service-process.js';
import { waitFor } from './helpers/wait.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const secretFile = (name: string, value: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
  return file;
};

/**
 * A valid value of every secret variable, with the variables it needs beside it: a new secret
 * that is not listed here fails to compile.
 */
const VALID: Record<(typeof SECRET_VARIABLES)[number], { value: string; context?: Record<string, string> }> = {
  // The passwords come in their own variables, so the URLs carry none (both at once is refused).
  REDIS_URL: { value: 'rediss://caelum@redis.internal:6390/2' },
  REDIS_PASSWORD: { value: 'redis-secret-1' },
  REDIS_SENTINEL_PASSWORD: { value: 'sentinel-secret-1', context: { REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_NAME: 'caelum' } },
  DATABASE_URL: { value: 'postgres://caelum@postgres.internal:5432/caelum' },
  DATABASE_PASSWORD: { value: 'db-secret-1' },
  CAELUM_API_TOKEN: { value: 'operator-secret-token-1' },
  CAELUM_READ_TOKEN: { value: 'reader-secret-token-1' },
};

describe('<NAME>_FILE', () => {
  it.each(SECRET_VARIABLES)('%s_FILE gives what %s gives, without the trailing line break', (name) => {
    const { value, context } = VALID[name];
    const direct = parseEnv({ ...context, [name]: value });
    expect(parseEnv({ ...context, [`${name}_FILE`]: secretFile(name, value) })).toEqual(direct);
    // The variable changed the configuration (so the comparison above compares something).
    expect(direct).not.toEqual(parseEnv({ ...context }));
  });

  it('reads several at once into one configuration', () => {
    const names = ['REDIS_URL', 'REDIS_PASSWORD', 'DATABASE_URL', 'DATABASE_PASSWORD', 'CAELUM_API_TOKEN', 'CAELUM_READ_TOKEN'] as const;
    const env = parseEnv(Object.fromEntries(names.map((name) => [`${name}_FILE`, secretFile(name, VALID[name].value)])));
    expect(env.redis).toEqual({ host: 'redis.internal', port: 6390, db: 2, username: 'caelum', password: 'redis-secret-1', tls: {} });
    expect([env.databaseUrl, env.apiToken, env.readToken]).toEqual(['postgres://caelum:db-secret-1@postgres.internal:5432/caelum', VALID.CAELUM_API_TOKEN.value, VALID.CAELUM_READ_TOKEN.value]);
  });

  it('refuses both forms at once, a file it cannot read and an empty one, naming the variable and never the secret', () => {
    const empty = path.join(dir, 'empty');
    writeFileSync(empty, '\n');
    const problems = problemsOf(() =>
      parseEnv({
        CAELUM_API_TOKEN: VALID.CAELUM_API_TOKEN.value,
        CAELUM_API_TOKEN_FILE: secretFile('api', VALID.CAELUM_API_TOKEN.value),
        DATABASE_URL_FILE: path.join(dir, 'missing'),
        REDIS_URL_FILE: empty,
      }),
    );
    expect(problems.sort()).toEqual(
      [
        `DATABASE_URL_FILE: cannot read ${path.join(dir, 'missing')}: ENOENT`,
        `CAELUM_API_TOKEN_FILE: CAELUM_API_TOKEN is set as well; set one of them`,
        `REDIS_URL_FILE: ${empty} is empty`,
      ].sort(),
    );
    // A value from a file is checked like the variable itself; the message does not quote it.
    const short = problemsOf(() => parseEnv({ CAELUM_READ_TOKEN_FILE: secretFile('short', 'tiny-secret') }));
    expect(short).toEqual(['CAELUM_READ_TOKEN: must be at least 16 characters']);
    // A password in the URL and in its own variable: neither silently wins.
    expect(problemsOf(() => parseEnv({ REDIS_URL: 'redis://:a@h:1', REDIS_PASSWORD_FILE: secretFile('rp', 'b'), DATABASE_URL: 'postgres://u:a@h/d', DATABASE_PASSWORD: 'b' }))).toEqual([
      'REDIS_PASSWORD: REDIS_URL holds a password as well; set one of them',
      'DATABASE_PASSWORD: DATABASE_URL holds a password as well; set one of them',
    ]);
  });
});

describe('no secret in the logs', () => {
  const schema = uniqueName('secrets');
  const redisPassword = 'redis-password-that-must-not-leak';
  const secrets = {
    redisPassword,
    dbPassword: 'db-password-that-must-not-leak',
    operator: 'operator-token-that-must-not-leak',
    reader: 'reader-token-that-must-not-leak',
    ci: 'ci-token-that-must-not-leak-0123',
  };
  let redis: PrivateRedis;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    redis = await PrivateRedis.start(mkdtempSync(path.join(dir, 'redis-')), {
      appendOnly: false,
      args: ['--requirepass', redisPassword],
      client: { password: redisPassword },
    });
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await redis.kill9();
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`drop schema if exists ${admin.escapeIdentifier(schema)} cascade`);
    await admin.end();
  });

  it('the api, a scheduler and a worker at trace level write none of them, working or refused', async () => {
    const tokensFile = path.join(dir, 'tokens.yaml');
    writeFileSync(tokensFile, `tokens:\n  - name: ci\n    scopes: [enqueue]\n    hash: ${hashToken(secrets.ci)}\n`);
    const env = {
      // Half from files, half from variables: both ways must keep them out of the log.
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      REDIS_PASSWORD_FILE: secretFile('redis-password', redisPassword),
      DATABASE_URL,
      // Postgres trusts local connections here, so it never asks for this password; it is still
      // in the process's configuration, which is what must not reach the log.
      DATABASE_PASSWORD: secrets.dbPassword,
      CAELUM_API_TOKEN_FILE: secretFile('api-token', secrets.operator),
      CAELUM_READ_TOKEN: secrets.reader,
      CAELUM_TOKENS_FILE: tokensFile,
      CAELUM_DB_SCHEMA: schema,
      CAELUM_PREFIX: 'caelum',
      CAELUM_CONFIG: path.join(REPO_ROOT, 'test/fixtures/workers.config.mts'),
      CAELUM_DATA_DIR: mkdtempSync(path.join(dir, 'data-')),
      CAELUM_METRICS_PORT: '0',
      PORT: '0',
      LOG_LEVEL: 'trace',
    };
    const api = await startService(['api'], env);
    services.push(api);
    services.push(await startService(['scheduler'], env), await startService(['worker', '--host', 'host-a'], env));

    const call = (method: string, url: string, token: string, body?: object) =>
      fetch(`${api.url}${url}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    const job = await call('POST', '/api/jobs/data-sync', secrets.ci, { symbol: 'AAA', timeframe: '1d' });
    expect(job.status).toBe(201);
    const { id } = (await job.json()) as { id: string };
    await waitFor('the worker to run the data sync', async () => ((await (await call('GET', `/api/jobs/${id}`, secrets.reader)).json()) as { state: string }).state === 'completed', { timeoutMs: 30_000 });
    expect((await call('POST', '/api/jobs/data-sync', secrets.reader, { symbol: 'AAA', timeframe: '1d' })).status).toBe(403);
    expect((await call('GET', '/api/system/health', secrets.operator)).status).toBe(200);
    expect((await call('GET', '/api/jobs', `${secrets.operator}-wrong`)).status).toBe(401);

    // A worker given a wrong Redis password: ioredis puts the AUTH arguments on its error.
    const wrongPassword = 'wrong-redis-password-must-not-leak';
    const refused = await startService(['worker', '--host', 'host-b'], { ...env, REDIS_PASSWORD_FILE: secretFile('wrong-password', wrongPassword) }).then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(refused).toMatch(/WRONGPASS/);

    const exits = await Promise.all(services.splice(0).map((s) => s.stop().then((code) => [s, code] as const)));
    const logs = exits.map(([s]) => s.output()).join('\n');
    expect(exits.map(([, code]) => code)).toEqual([0, 0, 0]);
    // The log is there, at trace level, and names the tokens that did things.
    expect(logs).toMatch(/"token":"ci"/);
    expect(logs).toMatch(/"token":"reader"/);
    expect(logs.split('\n').length).toBeGreaterThan(20);
    const leaked = [...Object.entries(secrets), ['wrongPassword', wrongPassword]].filter(([, value]) => logs.includes(value!) || refused!.includes(value!));
    expect(leaked.map(([name]) => name)).toEqual([]);
  });
});
