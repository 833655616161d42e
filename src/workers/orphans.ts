// Processes that outlive a worker killed with -9. The direct child dies with the worker
// (PR_SET_PDEATHSIG, see child-runner.ts), but what it started lives on: in its process group,
// or outside it (a helper that called setsid, a daemonised data loader). Each run is recorded in
// Redis with its group and its run mark (job-processes.ts); at start a worker ends, for every run
// recorded for its host whose owner process is gone, the group if its leader still carries the
// mark, and every process of this user that carries the mark. A reused pid is never killed: only
// the mark proves a process is the run's; and a worker counts as alive only if its pid still
// runs the process that started then, so a reused pid neither keeps a dead worker's run alive
// nor, when the reuser is this process, lets one worker sweep the live runs of another.
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { childrenKey as key } from '../queues/redis-names.js';
import { processAlive } from '../process-alive.js';
import { endGroup, groupAlive } from './child-runner.js';
import { endRun, processesOfRun, runMarkOf } from './job-processes.js';

export interface RunRecord {
  jobId: string;
  runId: string;
  pgid: number;
}

interface Entry extends RunRecord {
  ownerPid: number;
  /** When the owner process started (/proc/<pid>/stat), to tell it from a later one on its pid. */
  ownerStart?: string;
}

/** How long an orphan gets between SIGTERM and SIGKILL: its job is already gone. */
const ORPHAN_GRACE_MS = 2000;

/** This process's start time; read once, it never changes. */
let ownStart: { value: string | undefined } | undefined;

export async function recordChild(redis: Redis, prefix: string, host: string, run: RunRecord): Promise<void> {
  ownStart ??= { value: procStat(process.pid)?.start };
  const ownerStart = ownStart.value;
  const entry: Entry = { ...run, ownerPid: process.pid, ...(ownerStart ? { ownerStart } : {}) };
  await redis.hset(key(prefix, host), run.runId, JSON.stringify(entry));
}

export async function forgetChild(redis: Redis, prefix: string, host: string, runId: string): Promise<void> {
  await redis.hdel(key(prefix, host), runId);
}

/** Ends the runs recorded for this host whose worker died; returns how many processes were left. */
export async function sweepOrphans(redis: Redis, prefix: string, host: string, logger: Logger): Promise<number> {
  const entries = await redis.hgetall(key(prefix, host));
  let found = 0;
  for (const [field, raw] of Object.entries(entries)) {
    const entry = JSON.parse(raw) as Partial<Entry>;
    if (ownerAlive(entry)) continue; // a live worker's run, maybe one of this process
    if (entry.runId && entry.jobId && entry.pgid !== undefined) {
      const leaderIsRuns = groupAlive(entry.pgid) && (await runMarkOf(entry.pgid)) === entry.runId;
      const marked = await processesOfRun(entry.runId);
      if (leaderIsRuns || marked.length > 0) {
        logger.warn({ jobId: entry.jobId, pgid: entry.pgid, pids: marked }, 'ending the processes of a job whose worker died');
        const ended = await Promise.all([leaderIsRuns ? endGroup(entry.pgid, ORPHAN_GRACE_MS) : true, endRun(entry.runId, ORPHAN_GRACE_MS)]);
        if (!ended.every(Boolean)) logger.error({ jobId: entry.jobId, runId: entry.runId }, 'a process of a dead job outlived SIGKILL');
        found += marked.length;
      }
    }
    // An entry of an older worker (no run mark) cannot prove any process is its job's: dropped.
    await redis.hdel(key(prefix, host), field);
  }
  return found;
}

/** A process's state letter and start time (clock ticks since boot), from /proc; undefined without it. */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, start: fields[19]! };
  } catch {
    return undefined;
  }
}

/** Whether the worker that recorded a run still runs: not gone, not a zombie, not a later process on its pid. */
function ownerAlive(entry: Partial<Entry>): boolean {
  if (entry.ownerPid === undefined || !processAlive(entry.ownerPid)) return false;
  const now = procStat(entry.ownerPid);
  if (!now) return true; // no /proc: the pid is all there is to go by
  return now.state !== 'Z' && (entry.ownerStart === undefined || now.start === entry.ownerStart);
}
