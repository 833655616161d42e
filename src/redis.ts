// Redis connections. The API's producer connection fails fast (no offline queue), so a request
// gets 503 at once when Redis is away instead of hanging; worker connections wait and retry
// (maxRetriesPerRequest: null), as BullMQ requires for blocking commands.
import { Redis } from 'ioredis';
import type { Logger } from './logger.js';

export type RedisRole = 'producer' | 'worker';

/**
 * How long a command on the producer connection may go unanswered. Failing fast covers a refused
 * or dropped connection; a black-holed one (packets dropped, the socket still "ready") would hang
 * a request until its client gave up, so every producer command is bounded as well.
 */
export const PRODUCER_COMMAND_TIMEOUT_MS = 3000;

/** ioredis's text for a command past `commandTimeout`; it gives the error no code to test. */
const COMMAND_TIMED_OUT = 'Command timed out';

/** Whether `err` (from a command on `redis`) means Redis cannot be reached right now. */
export function isRedisAway(err: Error, redis: Redis): boolean {
  return redis.status !== 'ready' || err.message === COMMAND_TIMED_OUT;
}

export function createRedis(url: string, role: RedisRole, logger: Logger): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: role === 'producer' ? 1 : null,
    enableOfflineQueue: role !== 'producer',
    ...(role === 'producer' ? { commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS } : {}),
    connectTimeout: 2000,
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

/** Resolves once the connection is ready, or rejects after timeoutMs with a clear message. */
export async function waitForRedis(redis: Redis, url: string, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis at ${redactUrl(url)} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
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
