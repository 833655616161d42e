// Every process across TLS, as across machines: Redis over TLS only (rediss://, the server
// verified against a CA made here, a client certificate required), logged in as the ACL user of
// deploy/redis/caelum-acl.conf — only the commands, keys and channels the service needs — and
// PostgreSQL (a private server, TLS only) through sslmode=verify-full. The api, a scheduler and
// two workers run real work (a retrain on fresh data with its syncs and validation, cron fires,
// a cancel, a drain, a long-poll of the feed, Bull Board), and Redis's ACL LOG must stay empty:
// nothing the service does is refused.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../src/config/env.js';
import { closeRedis, createRedis, waitForRedis } from '../src/redis.js';
import { shippedUser } from './helpers/acl.js';
import { makeCa, type TestCa } from './helpers/certificates.js';
import { problemsOf } from './helpers/config-problems.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { testLogger } from './helpers/logger.js';
import { PrivatePostgres, postgresBin } from './helpers/private-postgres.js';
import { PrivateRedis } from './helpers/private-redis.js';
import { uniqueName } from './helpers/servers.js';
import { apiCaller, startStack, stackEnv, type ServiceProcess } from './helpers/service-process.js';
import { waitFor } from './helpers/wait.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-tls-acl-'));
const prefix = uniqueName('tlsacl');
const password = `redis-acl-password-${prefix}`;
const ADMIN = 'admin-password-of-the-test';
const OPERATOR = 'operator-token-of-the-tls-test';

let ca: TestCa;
let redis: PrivateRedis;
let postgres: PrivatePostgres;
let admin: Redis;
let clientCert: { cert: string; key: string };
const services: ServiceProcess[] = [];

beforeAll(async () => {
  ca = await makeCa(dir);
  const server = await ca.issue('redis-server', 'localhost', ['DNS:localhost', 'IP:127.0.0.1']);
  clientCert = await ca.issue('caelum-client', 'caelum');
  const conf = path.join(dir, 'users.conf');
  writeFileSync(conf, ['user default off', `user admin on >${ADMIN} ~* &* +@all`, shippedUser('caelum', prefix, password), ''].join('\n'));
  const tls = { ca: readFileSync(ca.ca), cert: readFileSync(clientCert.cert), key: readFileSync(clientCert.key) };
  redis = await PrivateRedis.start(mkdtempSync(path.join(dir, 'redis-')), {
    appendOnly: true,
    tls: true,
    args: ['--tls-cert-file', server.cert, '--tls-key-file', server.key, '--tls-ca-cert-file', ca.ca, '--tls-auth-clients', 'yes', '--include', conf],
    client: { username: 'admin', password: ADMIN, tls },
  });
  admin = new Redis({ host: '127.0.0.1', port: redis.port, username: 'admin', password: ADMIN, tls });
  const pgCert = await ca.issue('postgres-server', 'localhost', ['DNS:localhost']);
  postgres = await PrivatePostgres.start({
    settings: { ssl: 'on', ssl_cert_file: 'postgres-server.crt', ssl_key_file: 'postgres-server.key' },
    files: [pgCert.cert, pgCert.key],
    hba: ['hostssl all all 127.0.0.1/32 trust', 'host all all 0.0.0.0/0 reject'],
  });
}, 120_000);
afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  admin?.disconnect();
  await redis?.kill9();
  await postgres?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!postgresBin())('TLS and the ACL user', () => {
  it('the api, a scheduler and two workers run real work over TLS to both stores, the ACL refusing nothing', async () => {
    const tokens = path.join(dir, 'tokens.yaml');
    writeFileSync(tokens, 'tokens: []\n');
    const env = stackEnv(mkdtempSync(path.join(dir, 'data-')), {
      REDIS_URL: `rediss://caelum@127.0.0.1:${redis.port}`,
      REDIS_PASSWORD: password,
      REDIS_TLS_CA_FILE: ca.ca,
      REDIS_TLS_CERT_FILE: clientCert.cert,
      REDIS_TLS_KEY_FILE: clientCert.key,
      DATABASE_URL: `postgres://postgres@localhost:${postgres.port}/postgres?sslmode=verify-full&sslrootcert=${ca.ca}`,
      CAELUM_API_TOKEN: OPERATOR,
      CAELUM_TOKENS_FILE: tokens,
      CAELUM_PREFIX: prefix,
    });
    const api = await startStack(env, services);
    const call = apiCaller(api.url, OPERATOR);
    const feed = call('GET', '/api/checkpoints/feed?model=small&after=0&wait=25');
    const training = await call('POST', '/api/jobs/training', { model: 'small' });
    expect(training.status).toBe(201);
    const long = await call('POST', '/api/jobs/training', { model: 'wide', params: { epochs: 30, epoch_ms: 200 } });
    await waitFor('the long training to run', async () => (await call('GET', `/api/jobs/${long.body.id}`)).body.state === 'active', { timeoutMs: 30_000 });
    expect((await call('POST', `/api/jobs/${long.body.id}/cancel`)).status).toBe(202);
    expect((await call('POST', '/api/workers/host-b/drain', { reason: 'acl test' })).status).toBe(200);
    expect((await call('POST', '/api/workers/host-b/undrain', {})).status).toBe(200);
    const done = await waitFor('the retrain, its syncs and its validation', async () => {
      const job = await call('GET', `/api/jobs/${training.body.id}`);
      if (job.body.state === 'failed') throw new Error(`training failed: ${job.body.failureReason}`);
      const { body } = await call('GET', '/api/checkpoints?model=small');
      const c = body.checkpoints?.[0];
      return c && ['validated', 'rejected'].includes(c.status) ? c : undefined;
    }, { timeoutMs: 60_000 });
    expect(done.trainingJobId).toBe(training.body.id);
    if (done.status === 'validated') expect((await feed).body.checkpoints[0].id).toBe(done.id);
    expect((await call('GET', '/api/schedules/sync-every-2s')).body.history.some((f: { outcome: string }) => f.outcome === 'enqueued')).toBe(true);
    expect((await call('GET', '/api/system/health')).status).toBe(200);
    expect((await call('GET', '/api/workers')).body.workers).toHaveLength(2);
    const board = await fetch(`${api.url}/admin/queues/api/queues?activeQueue=training-small`, { headers: { authorization: `Bearer ${OPERATOR}` } });
    expect(board.status).toBe(200);
    expect((await call('POST', '/api/jobs/data-sync', { symbol: 'QQQ', timeframe: '1h' })).status).toBe(201);

    // Every connection of the four processes is the ACL user's (the server speaks TLS only).
    const users = ((await admin.client('LIST')) as string).split('\n').filter(Boolean).map((l) => /\buser=(\S+)/.exec(l)?.[1]);
    expect(users.filter((u) => u === 'caelum').length).toBeGreaterThanOrEqual(8);
    expect(users.filter((u) => u !== 'caelum' && u !== 'admin')).toEqual([]);
    const exits = await Promise.all(services.splice(0).map((s) => s.stop()));
    expect(exits).toEqual([0, 0, 0, 0]);
    // Nothing was refused: no command, key or channel outside what the ACL line grants.
    expect(await admin.call('ACL', 'LOG')).toEqual([]);
  });

  it('refuses a server its CA did not sign, and a connection without the client certificate', async () => {
    const other = await makeCa(mkdtempSync(path.join(dir, 'other-')), 'another CA');
    const base = { REDIS_URL: `rediss://caelum@127.0.0.1:${redis.port}`, REDIS_PASSWORD: password };
    const attempt = async (vars: Record<string, string>) => {
      const env = parseEnv({ ...base, ...vars });
      const r = createRedis(env.redis!, 'producer', testLogger);
      try {
        await waitForRedis(r, env.redis!, 3000);
        return 'connected';
      } catch (err) {
        return (err as Error).message;
      } finally {
        await closeRedis(r);
      }
    };
    const client = { REDIS_TLS_CERT_FILE: clientCert.cert, REDIS_TLS_KEY_FILE: clientCert.key };
    expect(await attempt({ REDIS_TLS_CA_FILE: ca.ca, ...client })).toBe('connected');
    expect(await attempt({ REDIS_TLS_CA_FILE: other.ca, ...client })).toMatch(
      new RegExp(`^Redis at rediss://caelum@127\\.0\\.0\\.1:${redis.port} did not answer within 3000 ms \\((self[- ]signed|unable to verify|unable to get).*\\)$`, 'i'),
    );
    expect(await attempt({ REDIS_TLS_CA_FILE: ca.ca })).toMatch(/did not answer within 3000 ms/);
  });

  it('the README shows the ACL line that is shipped', () => {
    const line = shippedUser('caelum', 'caelum', 'x').replace(/#[0-9a-f]{64}/, '#<sha256 of the password>');
    expect(readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8')).toContain(line);
  });

  it('names each bad TLS setting', () => {
    expect(problemsOf(() => parseEnv({ REDIS_URL: 'redis://h:1', REDIS_TLS_CA_FILE: ca.ca }))).toEqual(['REDIS_TLS_CA_FILE: Redis TLS is off: use a rediss:// URL (or REDIS_TLS=true with Sentinel)']);
    expect(problemsOf(() => parseEnv({ REDIS_URL: 'rediss://h:1', REDIS_TLS_CERT_FILE: clientCert.cert, REDIS_TLS_CA_FILE: path.join(dir, 'nope.crt') }))).toEqual([
      'REDIS_TLS_KEY_FILE: a client certificate needs its key, and a key its certificate',
      `REDIS_TLS_CA_FILE: cannot read ${path.join(dir, 'nope.crt')}: ENOENT`,
    ]);
  });
});
