// Redis connections. The API's producer connection fails fast (no offline queue), so a request
// gets 503 at once when Redis is away instead of hanging; worker connections wait and retry
// (maxRetriesPerRequest: null), as BullMQ requires for blocking commands.
//
// With Sentinel every connection asks the sentinels for the primary each time it (re)connects,
// checks that what answers is a primary (INFO role), and reconnects when a command meets a
// demoted primary (READONLY). So after the primary dies, each connection finds the promoted
// replica by itself, with no restart. ioredis's `failoverDetector` (reconnect on the sentinels'
// +switch-master) stays off: when the announcement arrives while a connection is reconnecting,
// ioredis ends that connection for good (status `end`, no retry), which the failover test met.
import { Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import { describeRedis, redisConfigFromUrl, type RedisConfig, type RedisTls } from './config/redis-config.js';
import type { Logger } from './logger.js';

/** A redis:// URL (tests, the demo's own server) or the parsed configuration. */
export type RedisTarget = string | RedisConfig;

const configOf = (target: RedisTarget): RedisConfig => (typeof target === 'string' ? redisConfigFromUrl(target) : target);

/** Node's TLS options: verify the server against the CA given (or the system's), present a client certificate when given. */
function tlsOptions(t: RedisTls): ConnectionOptions {
  return { ...(t.ca ? { ca: t.ca } : {}), ...(t.cert ? { cert: t.cert } : {}), ...(t.key ? { key: t.key } : {}) };
}

/** Where to connect and how to log in, as ioredis takes it. */
function connectionOptions(c: RedisConfig): RedisOptions {
  const auth = {
    db: c.db,
    ...(c.username !== undefined ? { username: c.username } : {}),
    ...(c.password !== undefined ? { password: c.password } : {}),
  };
  const s = c.sentinel;
  if (!s) return { host: c.host, port: c.port, ...auth, ...(c.tls ? { tls: tlsOptions(c.tls) } : {}) };
  return {
    sentinels: s.nodes,
    name: s.name,
    ...auth,
    ...(s.username !== undefined ? { sentinelUsername: s.username } : {}),
    ...(s.password !== undefined ? { sentinelPassword: s.password } : {}),
    ...(c.tls ? { tls: tlsOptions(c.tls), enableTLSForSentinelMode: true } : {}),
    ...(s.tls ? { sentinelTLS: tlsOptions(c.tls ?? {}) } : {}),
    sentinelRetryStrategy: (times: number) => Math.min(times * 200, 2000),
    // A command that reached a primary demoted meanwhile: reconnect, through the sentinels.
    reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 2 : false),
  };
}

export function describeTarget(target: RedisTarget): string {
  return describeRedis(configOf(target));
}

export type RedisRole = 'producer' | 'worker';

/**
 * How long a command on the producer connection may go unanswered. Failing fast covers a refused
 * or dropped connection; a black-holed one (packets dropped, the socket still "ready") would hang
 * a request until its client gave up, so every producer command is bounded as well.
 */
export const PRODUCER_COMMAND_TIMEOUT_MS = 3000;

/**
 * ioredis's texts for a command that could not be sent or was not answered: past
 * `commandTimeout`, on a connection without an offline queue that is not up, or on one that
 * closed meanwhile. It gives these errors no code to test.
 */
const AWAY_MESSAGES = new Set(['Command timed out', "Stream isn't writeable and enableOfflineQueue options is false", 'Connection is closed.']);

/**
 * Whether `err` (from a command on `redis`, or on another connection of the process, such as
 * the durable-write one) means Redis cannot be reached right now.
 */
export function isRedisAway(err: Error, redis: Redis): boolean {
  return redis.status !== 'ready' || AWAY_MESSAGES.has(err.message);
}

export function createRedis(target: RedisTarget, role: RedisRole, logger: Logger): Redis {
  const redis = new Redis({
    ...connectionOptions(configOf(target)),
    maxRetriesPerRequest: role === 'producer' ? 1 : null,
    enableOfflineQueue: role !== 'producer',
    ...(role === 'producer' ? { commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS } : {}),
    connectTimeout: 2000,
    // No CLIENT SETINFO on connect: the ACL user of deploy/redis/caelum-acl.conf has no use for
    // it (and Redis before 7.2 does not know it, so it cannot even be granted there).
    disableClientInfo: true,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    lazyConnect: false,
  });
  let lastError = '';
  redis.on('error', (err: Error) => {
    // ioredis repeats the same error on every reconnect attempt; say it once per change.
    if (err.message !== lastError) logger.warn({ err, role }, 'redis connection error');
    lastError = err.message;
  });
  redis.on('ready', () => {
    if (lastError) logger.info({ role }, 'redis connection restored');
    lastError = '';
  });
  return redis;
}

/** Resolves once the connection is ready, or rejects after timeoutMs with a clear message (and the last error, say WRONGPASS). */
export async function waitForRedis(redis: Redis, target: RedisTarget, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    let lastError = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis at ${describeTarget(target)} did not answer within ${timeoutMs} ms${lastError ? ` (${lastError})` : ''}`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      lastError = err.message;
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('error', onError);
    };
    redis.on('ready', onReady);
    redis.on('error', onError);
  });
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
