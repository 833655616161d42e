// 1. Dispatch overhead and 7. memory: N no-op CPU jobs through our worker (a separate process,
// capacity leases, heartbeats, progress plumbing all on, a child process per job) against a plain
// BullMQ Worker (a separate process, no-op processor) with the same concurrency, same Redis.
// Then the peak RSS of each worker process and the Redis memory of what the jobs left behind
// with the default retention.
import { randomUUID } from 'node:crypto';
import { Queue, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { defaultJobOptions, QueueSet } from '../src/queues/queue-set.js';
import { queueSpecs } from '../src/queues/placement.js';
import { cpuFleet } from './fleets.js';
import {
  type BenchResult,
  Cleanup,
  createSchema,
  deletePrefix,
  fmt,
  logger,
  prefixMemory,
  REDIS_URL,
  redisUsedMemory,
  sleep,
  uniqueName,
} from './lib.js';
import { startWorkerProc } from './proc.js';

/** The cheapest real command: coreutils `true`, found on PATH. */
export const NOOP_COMMAND = ['true'];
const CONCURRENCIES = [1, 16];

export const jobData = () => ({
  kind: 'backtest' as const,
  payload: { model: 'bench-model', symbols: ['AAPL'], timeframe: '1d' as const },
  trigger: { reason: 'api' as const, by: 'bench', at: new Date().toISOString() },
});

interface RunOutcome {
  jobsPerSec: number;
  completed: number;
  failed: number;
  elapsedMs: number;
  maxRssKiB: number;
  redisBytes: number;
  redisKeys: number;
  usedMemoryDelta: number;
  firstFailure?: string;
}

async function runOne(mode: 'ours' | 'raw' | 'raw-spawn', concurrency: number, n: number, deadline: number, schema: string): Promise<RunOutcome> {
  const prefix = uniqueName(`disp${mode}${concurrency}`);
  const cleanup = new Cleanup();
  cleanup.add(() => deletePrefix(prefix));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  cleanup.add(async () => redis.disconnect());
  try {
    const fleet = cpuFleet(concurrency, NOOP_COMMAND);
    const spec = queueSpecs(fleet).find((s) => s.kind === 'backtest')!;
    let queue: Queue;
    if (mode === 'ours') {
      const set = new QueueSet(fleet, redis, prefix, logger);
      cleanup.add(() => set.close());
      queue = set.get('backtest')!.queue;
    } else {
      queue = new Queue('raw-backtest', { connection: redis, prefix, defaultJobOptions: defaultJobOptions(spec) });
      cleanup.add(() => queue.close());
    }
    await queue.waitUntilReady();
    const usedBefore = await redisUsedMemory();
    const proc = await startWorkerProc({ mode, prefix, queue: 'raw-backtest', concurrency, command: NOOP_COMMAND, schema });
    let maxRssKiB = NaN;
    cleanup.add(async () => {
      if (Number.isNaN(maxRssKiB)) await proc.stop().catch(() => {});
    });
    const t0 = performance.now();
    for (let i = 0; i < n; i += 500) {
      const batch = Array.from({ length: Math.min(500, n - i) }, () => ({
        name: 'backtest',
        data: jobData(),
        opts: { jobId: `${mode === 'ours' ? 'backtest' : 'raw-backtest'}.${randomUUID()}` } as JobsOptions,
      }));
      await queue.addBulk(batch);
    }
    let completed = 0;
    let failed = 0;
    while (completed + failed < n && Date.now() < deadline) {
      await sleep(20);
      [completed, failed] = await Promise.all([queue.getCompletedCount(), queue.getFailedCount()]);
    }
    const elapsedMs = performance.now() - t0;
    let firstFailure: string | undefined;
    if (failed > 0) firstFailure = (await queue.getFailed(0, 0))[0]?.failedReason;
    maxRssKiB = await proc.stop();
    await sleep(200); // the worker's last writes (heartbeat withdrawal) have landed
    const mem = await prefixMemory(prefix);
    const usedAfter = await redisUsedMemory();
    return {
      jobsPerSec: (completed / elapsedMs) * 1000,
      completed,
      failed,
      elapsedMs,
      maxRssKiB,
      redisBytes: mem.bytes,
      redisKeys: mem.keys,
      usedMemoryDelta: usedAfter - usedBefore,
      ...(firstFailure ? { firstFailure } : {}),
    };
  } finally {
    await cleanup.run();
  }
}

export async function dispatchBench(budgetMs: number, n = Number(process.env.BENCH_DISPATCH_JOBS || 1000)): Promise<BenchResult> {
  const start = Date.now();
  const db = await createSchema('dispatch');
  try {
    const rows: BenchResult['rows'] = [];
    const notes: string[] = [];
    const results: Record<string, RunOutcome> = {};
    const runs = CONCURRENCIES.flatMap((c) => [['raw', c], ['raw-spawn', c], ['ours', c]] as const);
    for (const [i, [mode, c]] of runs.entries()) {
      // Each run gets an equal share of what is left of the budget.
      const share = (budgetMs - (Date.now() - start)) / (runs.length - i);
      results[`${mode}${c}`] = await runOne(mode, c, n, Date.now() + share - 3000, db.schema);
    }
    for (const c of CONCURRENCIES) {
      const ours = results[`ours${c}`]!;
      const raw = results[`raw${c}`]!;
      const ratio = ours.jobsPerSec / raw.jobsPerSec;
      const partial = (r: RunOutcome) => (r.completed < n ? ` (${r.completed}/${n} done in budget)` : '');
      const fail = (r: RunOutcome) => (r.failed ? `, ${r.failed} failed: ${r.firstFailure}` : '');
      rows.push({
        figure: `1. dispatch, concurrency ${c}: jobs/s (${n} no-op jobs)`,
        ours: `${fmt(ours.jobsPerSec)}${partial(ours)}${fail(ours)}`,
        baseline: `${fmt(raw.jobsPerSec)} raw BullMQ Worker${partial(raw)}${fail(raw)}`,
        ratio: `${fmt(ratio, 3)}x`,
        goal: `>= 0.9x: ${ratio >= 0.9 ? 'met' : 'MISSED'}`,
      });
      const spawned = results[`raw-spawn${c}`]!;
      rows.push({
        figure: `1. dispatch, concurrency ${c}: jobs/s against a raw worker that also spawns \`true\``,
        ours: `${fmt(ours.jobsPerSec)}`,
        baseline: `${fmt(spawned.jobsPerSec)} raw BullMQ Worker + child_process.spawn${partial(spawned)}${fail(spawned)}`,
        ratio: `${fmt(ours.jobsPerSec / spawned.jobsPerSec, 3)}x`,
        goal: 'report (where the gap goes)',
      });
    }
    const peak = (m: 'ours' | 'raw' | 'raw-spawn') => Math.max(...CONCURRENCIES.map((c) => results[`${m}${c}`]!.maxRssKiB)) / 1024;
    rows.push({
      figure: '7. memory: peak RSS of the worker process (dispatch runs)',
      ours: `${fmt(peak('ours'))} MiB`,
      baseline: `${fmt(peak('raw'))} MiB raw BullMQ worker process`,
      ratio: `${fmt(peak('ours') / peak('raw'), 2)}x`,
      goal: 'report',
    });
    const c = CONCURRENCIES.at(-1)!;
    const o = results[`ours${c}`]!;
    const r = results[`raw${c}`]!;
    rows.push({
      figure: `7. memory: Redis after ${n} jobs, default retention (MEMORY USAGE of the prefix; INFO used_memory delta)`,
      ours: `${fmt(o.redisBytes / 1024)} KiB in ${o.redisKeys} keys; used_memory +${fmt(o.usedMemoryDelta / 1024)} KiB`,
      baseline: `${fmt(r.redisBytes / 1024)} KiB in ${r.redisKeys} keys; used_memory +${fmt(r.usedMemoryDelta / 1024)} KiB (raw)`,
      ratio: `${fmt(o.redisBytes / r.redisBytes, 2)}x`,
      goal: 'report',
    });
    notes.push(
      `dispatch: ${n} jobs per run, command ${JSON.stringify(NOOP_COMMAND)} (our worker wraps it in setpriv --pdeathsig KILL); ` +
        'both workers in their own process; jobs added with addBulk once the worker is ready; jobs/s = completed / (first add to last completion).',
    );
    return { rows, notes };
  } finally {
    await db.drop();
  }
}
