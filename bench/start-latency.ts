// 3. Start latency: an idle worker (its own process) waits; M jobs are added one after another,
// each once the previous one has finished. For each: time from the add call to the processor
// start (job.processedOn, when BullMQ moves the job to active) and to the start of the child's
// work (the child prints its start time). Ours against a plain BullMQ Worker whose processor
// spawns the same child with child_process.spawn.
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { defaultJobOptions, QueueSet } from '../src/queues/queue-set.js';
import { queueSpecs } from '../src/queues/placement.js';
import { jobData } from './dispatch.js';
import { cpuFleet } from './fleets.js';
import { type BenchResult, Cleanup, createSchema, deletePrefix, fmt, logger, percentile, preciseNow, REDIS_URL, uniqueName } from './lib.js';
import { startWorkerProc } from './proc.js';

export const CHILD_START_COMMAND = ['node', 'bench/child-start.mjs'];
export const LIGHT_CHILD_COMMAND = ['/bin/sh', 'bench/child-start.sh'];

interface Latencies {
  processor: number[];
  child: number[];
  errors: number;
}

async function measure(mode: 'ours' | 'raw-spawn', command: string[], m: number, deadline: number, schema: string): Promise<Latencies> {
  const prefix = uniqueName(`start${mode}`);
  const cleanup = new Cleanup();
  cleanup.add(() => deletePrefix(prefix));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  cleanup.add(async () => redis.disconnect());
  try {
    const fleet = cpuFleet(1, command);
    const queueName = mode === 'ours' ? 'backtest' : 'raw-backtest';
    let queue: Queue;
    if (mode === 'ours') {
      const set = new QueueSet(fleet, redis, prefix, logger);
      cleanup.add(() => set.close());
      queue = set.get('backtest')!.queue;
    } else {
      const spec = queueSpecs(fleet).find((s) => s.kind === 'backtest')!;
      queue = new Queue(queueName, { connection: redis, prefix, defaultJobOptions: defaultJobOptions(spec) });
      cleanup.add(() => queue.close());
    }
    const events = new QueueEvents(queueName, { connection: { url: REDIS_URL }, prefix });
    cleanup.add(() => events.close());
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    const proc = await startWorkerProc({ mode, prefix, queue: queueName, concurrency: 1, command, schema });
    cleanup.add(() => proc.stop().catch(() => 0));
    const out: Latencies = { processor: [], child: [], errors: 0 };
    // A few warm-up jobs first (page cache, JIT), not counted.
    for (let i = -5; i < m && Date.now() < deadline; i++) {
      const addedAt = preciseNow();
      const job = await queue.add('backtest', jobData(), { jobId: `${queueName}.${randomUUID()}` });
      try {
        await job.waitUntilFinished(events, 10_000);
      } catch {
        out.errors++;
        continue;
      }
      const done = await queue.getJob(job.id!);
      const startedAt = (done?.returnvalue as { metrics?: { startedAt?: number } } | null)?.metrics?.startedAt;
      if (i < 0 || !done?.processedOn || !startedAt) continue;
      out.processor.push(done.processedOn - addedAt);
      out.child.push(startedAt - addedAt);
    }
    return out;
  } finally {
    await cleanup.run();
  }
}

export async function startLatencyBench(budgetMs: number, m = Number(process.env.BENCH_START_JOBS || 100)): Promise<BenchResult> {
  const start = Date.now();
  const db = await createSchema('start');
  try {
    // Budget: 35% to each side with the node child, 15% to each with the light child.
    const until = (share: number) => Date.now() + share * budgetMs - 2000;
    const ours = await measure('ours', CHILD_START_COMMAND, m, until(0.35), db.schema);
    const raw = await measure('raw-spawn', CHILD_START_COMMAND, m, until(0.35), db.schema);
    const oursLight = await measure('ours', LIGHT_CHILD_COMMAND, m, until(0.15), db.schema);
    const rawLight = await measure('raw-spawn', LIGHT_CHILD_COMMAND, m, until(0.15), db.schema);
    const p = (xs: number[]) => `${fmt(percentile(xs, 50), 2)} / ${fmt(percentile(xs, 95), 2)} / ${fmt(percentile(xs, 99), 2)}`;
    const diff = percentile(ours.processor, 50) - percentile(raw.processor, 50);
    const childP50 = percentile(ours.child, 50);
    const count = (l: Latencies) => `${l.processor.length} jobs${l.errors ? `, ${l.errors} not finished` : ''}`;
    return {
      rows: [
        {
          figure: '3. start latency: add -> processor start (processedOn), p50 / p95 / p99 ms',
          ours: `${p(ours.processor)} (${count(ours)})`,
          baseline: `${p(raw.processor)} raw BullMQ Worker (${count(raw)})`,
          ratio: `${diff >= 0 ? '+' : ''}${fmt(diff, 2)} ms (p50)`,
          goal: `p50 within 2 ms of raw: ${Math.abs(diff) <= 2 || diff < 0 ? 'met' : 'MISSED'}`,
        },
        {
          figure: '3. start latency: add -> child start, p50 / p95 / p99 ms',
          ours: p(ours.child),
          baseline: `${p(raw.child)} raw BullMQ + child_process.spawn`,
          ratio: `${fmt(childP50 / percentile(raw.child, 50), 2)}x (p50)`,
          goal: `p50 < 50 ms: ${childP50 < 50 ? 'met' : 'MISSED'}`,
        },
        {
          figure: '3. start latency: add -> child start with a light child (sh + date), p50 / p95 / p99 ms',
          ours: `${p(oursLight.child)} (${count(oursLight)})`,
          baseline: `${p(rawLight.child)} raw BullMQ + child_process.spawn (${count(rawLight)})`,
          ratio: `${fmt(percentile(oursLight.child, 50) / percentile(rawLight.child, 50), 2)}x (p50)`,
          goal: `p50 < 50 ms: ${percentile(oursLight.child, 50) < 50 ? 'met' : 'MISSED'} (shows node's boot share)`,
        },
      ],
      notes: [
        `start latency: up to ${m} jobs per side and child (the issue says 2,000; fewer to stay in budget), each added once the previous finished, after 5 uncounted warm-up jobs; child ${JSON.stringify(CHILD_START_COMMAND)} reports performance.timeOrigin + performance.now() as its first statement (the light child ${JSON.stringify(LIGHT_CHILD_COMMAND)} reports date +%s%N); workers in their own process.`,
      ],
    };
  } finally {
    await db.drop();
  }
}
