// Reachability probes with their own deadlines, so a health request never hangs on a server
// that accepts the connection and then says nothing.
import type { Redis } from 'ioredis';
import type pg from 'pg';

export interface Probe {
  ok: boolean;
  latencyMs: number;
  error?: string;
}

export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function probe(run: () => Promise<unknown>, ms: number, what: string): Promise<Probe> {
  const started = performance.now();
  try {
    await withDeadline(run(), ms, what);
    return { ok: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 };
  } catch (err) {
    return {
      ok: false,
      latencyMs: Math.round(performance.now() - started),
      error: err instanceof Error ? err.message : String(err),
    };
  }
}

export function probeRedis(redis: Redis, ms = 1000): Promise<Probe> {
  return probe(() => redis.ping(), ms, 'redis');
}

export function probePostgres(pool: pg.Pool, ms = 1000): Promise<Probe> {
  return probe(() => pool.query('select 1'), ms, 'postgres');
}
