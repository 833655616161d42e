// Sentinel as in production: the nodes and the sentinels speak TLS only (certificates made here
// with openssl); the nodes know only the ACL users shipped in deploy/redis/caelum-acl.conf (the
// service's, the replica's, the sentinels') and the sentinels ask for a password of their own.
// A connection made from REDIS_SENTINELS, REDIS_SENTINEL_NAME, REDIS_SENTINEL_PASSWORD,
// REDIS_SENTINEL_TLS, REDIS_TLS, REDIS_USERNAME, REDIS_PASSWORD and REDIS_TLS_CA_FILE finds the
// primary, and the new one after a kill -9 of the old: the failover itself ran on those users.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnv } from '../src/config/env.js';
import { closeRedis, createRedis, describeTarget, waitForRedis } from '../src/redis.js';
import { shippedUser } from './helpers/acl.js';
import { makeCa } from './helpers/certificates.js';
import { problemsOf } from './helpers/config-problems.js';
import { testLogger } from './helpers/logger.js';
import { RedisSentinels } from './helpers/redis-sentinels.js';
import { waitFor } from './helpers/wait.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-sentinel-tls-'));
const PASSWORD = { caelum: 'caelum-password-of-the-test', replica: 'replica-password-of-the-test', sentinel: 'sentinel-user-password-of-the-test', admin: 'admin' };
const SENTINEL_PASSWORD = 'sentinel-password-of-the-test';
let stores: RedisSentinels;
let ca: string;

beforeAll(async () => {
  const authority = await makeCa(mkdtempSync(path.join(dir, 'ca-')));
  ca = authority.ca;
  const server = await authority.issue('redis', 'localhost', ['DNS:localhost', 'IP:127.0.0.1']);
  const users = path.join(dir, 'users.conf');
  writeFileSync(
    users,
    [
      ...(['caelum', 'replica', 'sentinel'] as const).map((u) => shippedUser(u, 'caelum', PASSWORD[u])),
      'user default off',
      `user admin on >${PASSWORD.admin} ~* &* +@all`,
      '',
    ].join('\n'),
  );
  const login = (user: 'replica' | 'sentinel' | 'admin') => ({ user, password: PASSWORD[user] });
  stores = await RedisSentinels.start(path.join(dir, 'redis'), {
    security: { tls: { ...server, ca }, acl: { file: users, replica: login('replica'), sentinel: login('sentinel'), admin: login('admin') }, sentinelPassword: SENTINEL_PASSWORD },
  });
}, 60_000);
afterAll(async () => {
  await stores?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Sentinel over TLS, with passwords', () => {
  it('finds the primary through the sentinels, and the promoted replica after a kill -9', async () => {
    const env = parseEnv({
      REDIS_SENTINELS: stores.addresses,
      REDIS_SENTINEL_NAME: stores.name,
      REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
      REDIS_SENTINEL_TLS: 'true',
      REDIS_TLS: 'true',
      REDIS_USERNAME: 'caelum',
      REDIS_PASSWORD: PASSWORD.caelum,
      REDIS_TLS_CA_FILE: ca,
    });
    expect(describeTarget(env.redis!)).toBe(`rediss://caelum@<primary "caelum" of sentinels ${stores.addresses}>`);
    const redis = createRedis(env.redis!, 'worker', testLogger);
    try {
      await waitForRedis(redis, env.redis!);
      expect((await redis.info('replication')).match(/^role:(\w+)/m)?.[1]).toBe('master');
      await redis.set('caelum:before', '1');
      expect(await redis.call('WAIT', 1, 5000)).toBe(1);
      await stores.primary.kill9();
      // The same connection, unattended: it loses the primary and asks the sentinels again.
      await waitFor('the write to land on the promoted replica', async () => (await redis.set('caelum:after', '2')) === 'OK' && (await stores.primaryPort()) === stores.replica.port, { timeoutMs: 30_000 });
      expect(await redis.mget('caelum:before', 'caelum:after')).toEqual(['1', '2']);
      expect((await redis.info('replication')).match(/^role:(\w+)/m)?.[1]).toBe('master');
    } finally {
      await closeRedis(redis);
    }
  });

  it('names each bad Sentinel setting', () => {
    expect(problemsOf(() => parseEnv({ REDIS_SENTINELS: 'a:1,b', REDIS_URL: 'redis://x:1' }))).toEqual([
      'REDIS_SENTINELS: REDIS_URL is set as well; with Sentinel the sentinels name the primary, so set one of them',
      'REDIS_SENTINEL_NAME: required with REDIS_SENTINELS: the name the sentinels monitor the primary under (sentinel monitor <name> …)',
      'REDIS_SENTINELS: "b" is not host:port (IPv6 as [::1]:26379)',
    ]);
    expect(problemsOf(() => parseEnv({ REDIS_SENTINEL_PASSWORD: 'x', REDIS_TLS: 'true' }))).toEqual([
      'REDIS_SENTINEL_PASSWORD: only with REDIS_SENTINELS',
      'REDIS_TLS: only with REDIS_SENTINELS; for one server use a rediss:// URL',
    ]);
    expect(problemsOf(() => parseEnv({ REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'm', REDIS_TLS: 'yes' }))).toEqual(['REDIS_TLS: must be true or false']);
    expect(parseEnv({ REDIS_SENTINELS: '[::1]:26379, s2.internal:26380', REDIS_SENTINEL_NAME: 'm' }).redis?.sentinel?.nodes).toEqual([
      { host: '::1', port: 26379 },
      { host: 's2.internal', port: 26380 },
    ]);
  });
});
