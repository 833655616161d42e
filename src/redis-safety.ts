// Whether this Redis would lose queued jobs: an eviction policy other than noeviction drops keys
// under memory pressure, and with neither AOF nor RDB a restart forgets everything.
//
// Read from INFO, which the service's ACL user may run, rather than CONFIG GET, which it may
// not (CONFIG GET would also hand out requirepass and masterauth). Only whether RDB snapshots are
// on is not in INFO: that is asked of CONFIG, and only when AOF is off.
import type { Redis } from 'ioredis';

export interface RedisSafety {
  evictionPolicy: string | null;
  appendonly: boolean | null;
  rdb: boolean | null;
  warnings: string[];
}

const field = (info: string, name: string): string | null => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? null;

async function rdbConfigured(redis: Redis): Promise<boolean | null> {
  try {
    const reply = (await redis.call('CONFIG', 'GET', 'save')) as string[];
    return (reply[1] ?? '').trim() !== '';
  } catch {
    // Refused by the ACL, or a managed Redis without CONFIG.
    return null;
  }
}

export async function checkRedisSafety(redis: Redis): Promise<RedisSafety> {
  let info: string;
  try {
    info = await redis.info();
  } catch (err) {
    return {
      evictionPolicy: null,
      appendonly: null,
      rdb: null,
      warnings: [`could not read the Redis INFO (${err instanceof Error ? err.message : String(err)}); check eviction and persistence by hand`],
    };
  }
  const policy = field(info, 'maxmemory_policy');
  const aof = field(info, 'aof_enabled');
  const appendonly = aof === null ? null : aof === '1';
  const rdb = appendonly === false ? await rdbConfigured(redis) : null;
  const warnings: string[] = [];
  if (policy && policy !== 'noeviction') {
    warnings.push(`Redis maxmemory-policy is ${policy}: under memory pressure it evicts queued jobs; set it to noeviction`);
  }
  if (appendonly === false && rdb === false) {
    warnings.push('Redis keeps nothing on disk (neither AOF nor RDB): a restart loses every queued job; set appendonly yes');
  } else if (appendonly === false && rdb === null) {
    warnings.push('Redis has AOF off, and whether RDB snapshots are on cannot be read here: set appendonly yes, or check that save is set');
  }
  return { evictionPolicy: policy, appendonly, rdb, warnings };
}
