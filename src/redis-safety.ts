// Whether this Redis would lose queued jobs: an eviction policy other than noeviction drops keys
// under memory pressure, and with neither AOF nor RDB a restart forgets everything.
import type { Redis } from 'ioredis';

export interface RedisSafety {
  evictionPolicy: string | null;
  appendonly: boolean | null;
  rdb: boolean | null;
  warnings: string[];
}

async function configGet(redis: Redis, name: string): Promise<string | null> {
  const reply = (await redis.call('CONFIG', 'GET', name)) as string[];
  return reply[1] ?? null;
}

export async function checkRedisSafety(redis: Redis): Promise<RedisSafety> {
  try {
    const [policy, aof, save] = await Promise.all([
      configGet(redis, 'maxmemory-policy'),
      configGet(redis, 'appendonly'),
      configGet(redis, 'save'),
    ]);
    const appendonly = aof === 'yes';
    const rdb = (save ?? '').trim() !== '';
    const warnings: string[] = [];
    if (policy && policy !== 'noeviction') {
      warnings.push(`Redis maxmemory-policy is ${policy}: under memory pressure it evicts queued jobs; set it to noeviction`);
    }
    if (!appendonly && !rdb) {
      warnings.push('Redis keeps nothing on disk (neither AOF nor RDB): a restart loses every queued job; set appendonly yes');
    }
    return { evictionPolicy: policy, appendonly, rdb, warnings };
  } catch (err) {
    // Managed Redis often disables CONFIG.
    return {
      evictionPolicy: null,
      appendonly: null,
      rdb: null,
      warnings: [`could not read the Redis configuration (${err instanceof Error ? err.message : String(err)}); check eviction and persistence by hand`],
    };
  }
}
