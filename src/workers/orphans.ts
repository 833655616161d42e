// Children that outlive a worker killed with -9. The direct child dies with the worker
// (PR_SET_PDEATHSIG, see child-runner.ts), but what it started lives on in its process group.
// Each running child's group is recorded in Redis; at start a worker ends the groups recorded
// for its host whose owner process is gone, checking /proc that the group is still that job's
// (a reused pid is never killed).
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { childrenKey as key } from '../queues/redis-names.js';
import { processAlive } from '../process-alive.js';
import { endGroup, groupAlive } from './child-runner.js';


interface Entry {
  pgid: number;
  ownerPid: number;
}

export async function recordChild(redis: Redis, prefix: string, host: string, jobId: string, pgid: number): Promise<void> {
  const entry: Entry = { pgid, ownerPid: process.pid };
  await redis.hset(key(prefix, host), jobId, JSON.stringify(entry));
}

export async function forgetChild(redis: Redis, prefix: string, host: string, jobId: string): Promise<void> {
  await redis.hdel(key(prefix, host), jobId);
}

function belongsToJob(pgid: number, jobId: string): boolean {
  try {
    return readFileSync(`/proc/${pgid}/environ`, 'utf8').split('\0').includes(`CAELUM_JOB_ID=${jobId}`);
  } catch {
    // The leader is gone (or this is not Linux): the group may still have members, but we
    // cannot prove they are ours, so leave them.
    return false;
  }
}

export async function sweepOrphans(redis: Redis, prefix: string, host: string, logger: Logger): Promise<number> {
  const entries = await redis.hgetall(key(prefix, host));
  let ended = 0;
  for (const [jobId, raw] of Object.entries(entries)) {
    const entry = JSON.parse(raw) as Entry;
    if (entry.ownerPid !== process.pid && processAlive(entry.ownerPid)) continue; // another live worker's child
    if (groupAlive(entry.pgid) && belongsToJob(entry.pgid, jobId)) {
      logger.warn({ jobId, pgid: entry.pgid }, 'ending the orphaned process group of a job whose worker died');
      await endGroup(entry.pgid, 2000);
      ended++;
    }
    await redis.hdel(key(prefix, host), jobId);
  }
  return ended;
}
