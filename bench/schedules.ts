// 5. Schedule fire accuracy: 3 Scheduler replicas (each with its own Redis connection and
// Postgres pool, as separate processes would have) on a one-second cron for ~20 s. Jobs per fire
// (must be exactly 1) and the lateness of the enqueue after the scheduled time
// (job.timestamp - trigger.scheduledFor). Baseline, in the same window: one plain timer armed
// with croner for the same cron doing a bare queue.add, no claim, no Postgres.
import type { Job } from 'bullmq';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueSet } from '../src/queues/queue-set.js';
import { createPool } from '../src/registry/pool.js';
import { createScheduleRepository } from '../src/registry/schedules.js';
import { cronOf } from '../src/scheduler/fire-times.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import type { LoadedFleet } from '../src/config/load-fleet.js';
import { cpuFleet } from './fleets.js';
import { NOOP_COMMAND } from './dispatch.js';
import { type BenchResult, Cleanup, createSchema, DATABASE_URL, deletePrefix, fmt, logger, percentile, REDIS_URL, sleep, uniqueName } from './lib.js';

const SCHEDULE = 'every-second';
const REPLICAS = 3;

async function replica(fleet: LoadedFleet, prefix: string, schema: string, cleanup: Cleanup): Promise<void> {
  const pool = createPool(DATABASE_URL, logger, { schema, max: 2 });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  await new Promise<void>((r) => (redis.status === 'ready' ? r() : redis.once('ready', () => r())));
  const queues = new QueueSet(fleet, redis, prefix, logger);
  const scheduler = new Scheduler({ fleet, queues, schedules: createScheduleRepository(pool), logger });
  cleanup.add(async () => {
    await scheduler.close();
    await queues.close();
    redis.disconnect();
    await pool.end();
  });
  await scheduler.start();
}

export async function schedulesBench(budgetMs: number): Promise<BenchResult> {
  const seconds = Math.max(5, Math.min(Number(process.env.BENCH_SCHEDULE_SECONDS || 20), Math.floor(budgetMs / 1000) - 8));
  const cleanup = new Cleanup();
  try {
    const db = await createSchema('sched');
    cleanup.add(() => db.drop());
    const prefix = uniqueName('sched');
    cleanup.add(() => deletePrefix(prefix));
    const fleet = cpuFleet(1, NOOP_COMMAND, {
      [SCHEDULE]: { cron: '* * * * * *', timezone: 'UTC', enqueue: { kind: 'training', model: 'bench-model' }, overlap: 'allow' },
    });
    const replicas = new Cleanup();
    cleanup.add(() => replicas.run());
    await Promise.all(Array.from({ length: REPLICAS }, () => replica(fleet, prefix, db.schema, replicas)));

    // The baseline timer, armed the same way (next fire from croner, setTimeout to it).
    const rawRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    cleanup.add(async () => rawRedis.disconnect());
    const rawQueue = new Queue('raw-cron', { connection: rawRedis, prefix });
    cleanup.add(() => rawQueue.close());
    await rawQueue.waitUntilReady();
    const cron = cronOf({ cron: '* * * * * *', timezone: 'UTC' })!;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const rawAdds: Promise<unknown>[] = [];
    const arm = (after: number) => {
      const at = cron.nextRun(new Date(after))!.getTime();
      timer = setTimeout(() => {
        if (stopped) return;
        rawAdds.push(rawQueue.add('tick', { scheduledFor: at }, { jobId: `raw-${at}` }));
        arm(at);
      }, Math.max(0, at - Date.now()));
    };
    arm(Date.now());
    cleanup.add(async () => {
      stopped = true;
      clearTimeout(timer);
    });

    await sleep(seconds * 1000);
    await replicas.run();
    stopped = true;
    clearTimeout(timer);
    await Promise.all(rawAdds);

    const queue = new Queue('training-bench-model', { connection: rawRedis, prefix });
    cleanup.add(() => queue.close());
    const jobs = (await queue.getJobs(['waiting'], 0, -1)) as Job[];
    const fires = (
      await db.pool.query<{ scheduled_for: Date; outcome: string; job_ids: string[] }>(
        'select scheduled_for, outcome, job_ids from schedule_fires where schedule = $1 order by scheduled_for',
        [SCHEDULE],
      )
    ).rows;
    const perFire = new Map<string, number>();
    for (const j of jobs) {
      const at = (j.data as { trigger: { scheduledFor: string } }).trigger.scheduledFor;
      perFire.set(at, (perFire.get(at) ?? 0) + 1);
    }
    const counts = [...perFire.values()];
    const notOne = counts.filter((c) => c !== 1).length;
    const enqueued = fires.filter((f) => f.outcome === 'enqueued');
    const times = enqueued.map((f) => f.scheduled_for.getTime());
    let gaps = 0;
    for (let i = 1; i < times.length; i++) if (times[i]! - times[i - 1]! !== 1000) gaps++;
    const lateness = jobs.map((j) => j.timestamp - Date.parse((j.data as { trigger: { scheduledFor: string } }).trigger.scheduledFor));
    const rawJobs = (await rawQueue.getJobs(['waiting'], 0, -1)) as Job[];
    const rawLateness = rawJobs.map((j) => j.timestamp - (j.data as { scheduledFor: number }).scheduledFor);
    const p99 = percentile(lateness, 99);
    return {
      rows: [
        {
          figure: `5. schedules: jobs per fire (${REPLICAS} replicas, 1 s cron, ${seconds} s)`,
          ours: `${fires.length} fires, ${jobs.length} jobs; jobs per fire min ${Math.min(...counts)} max ${Math.max(...counts)}; ${notOne} fires with != 1; ${gaps} gaps in the seconds`,
          baseline: `${rawJobs.length} jobs from 1 plain timer`,
          ratio: `${fmt(jobs.length / Math.max(1, enqueued.length), 3)} jobs/fire`,
          goal: `exactly 1: ${notOne === 0 && jobs.length === enqueued.length && jobs.length > 0 && gaps === 0 ? 'met' : 'MISSED'}`,
        },
        {
          figure: '5. schedules: enqueue lateness after the scheduled time, p50 / p99 ms',
          ours: `${fmt(percentile(lateness, 50))} / ${fmt(p99)} (max ${fmt(Math.max(...lateness))})`,
          baseline: `${fmt(percentile(rawLateness, 50))} / ${fmt(percentile(rawLateness, 99))} plain timer + queue.add`,
          ratio: `${fmt(p99 / percentile(rawLateness, 99), 2)}x (p99)`,
          goal: `p99 < 100 ms: ${p99 < 100 ? 'met' : 'MISSED'}`,
        },
      ],
      notes: [
        `schedules: ${REPLICAS} Scheduler replicas in the benchmark process, each with its own Redis connection and pg pool (as test/scheduler.test.ts does), cron "* * * * * *" UTC, overlap allow, for ${seconds} s; the baseline timer ran in the same window.`,
      ],
    };
  } finally {
    await cleanup.run();
  }
}
