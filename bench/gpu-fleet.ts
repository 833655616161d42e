// 4. GPU utilization in a fleet of real host workers: 8 fake hosts with 4 fake GPUs each in 2
// pools, run as in-process HostWorkers (startWorkers with 8 host ids: one process, 8 host
// workers, each with its own blocking connection), 200 training jobs of models needing 1, 2 or
// 4 GPUs, each a child (bench/sleeper.sh) sleeping a known 1-3 s: long enough that the figures
// measure the dispatch policy rather than the cost of starting a process. Each policy
// (CAELUM_DISPATCH_POLICY) runs the same jobs in turn. Makespan against the ideal lower bound, the
// busy fraction of the GPUs (leased, and useful: the nominal sleep), the dispatch overhead apart
// (leased minus useful), and the worst wait of a 4-GPU job against its fair share.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueSet } from '../src/queues/queue-set.js';
import type { DispatchPolicy } from '../src/config/dispatch-policy.js';
import { DEFAULT_HOST_WORKER_OPTIONS } from '../src/workers/host-worker.js';
import { startTestWorkers } from '../test/helpers/workers.js';
import { GPU_POOLS, GPU_SIZES, gpuFleet, gpuHostIds, gpuModel } from './fleets.js';
import { createPool } from '../src/registry/pool.js';
import { type BenchResult, Cleanup, createSchema, DATABASE_URL, deletePrefix, fmt, logger, percentile, REDIS_URL, sleep, uniqueName } from './lib.js';

const HOSTS = 8;
const GPUS_PER_HOST = 4;
const JOBS = Number(process.env.BENCH_GPU_JOBS || 200);
const MS_MIN = Number(process.env.BENCH_GPU_MS_MIN || 1000);
const MS_MAX = Number(process.env.BENCH_GPU_MS_MAX || 3000);
const POLICIES = (process.env.BENCH_GPU_POLICIES || 'backfill,pool,host,none').split(',') as DispatchPolicy[];

/** A small deterministic generator, so every run gets the same job mix. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Planned {
  queue: string;
  pool: string;
  gpus: number;
  ms: number;
  order: number;
}

function plan(): Planned[] {
  const rand = rng(8);
  return Array.from({ length: JOBS }, (_, order) => {
    // Pools alternate, so both carry the same number of jobs and the fleet's bound is near each
    // pool's: an unbalanced mix would measure the imbalance, not the policy.
    const pool = GPU_POOLS[order % GPU_POOLS.length]!;
    const gpus = GPU_SIZES[Math.floor(rand() * GPU_SIZES.length)]!;
    // Each model has its typical run time (trainings of one model take about the same time: what
    // learned durations rely on), spread over MS_MIN..MS_MAX by size, each run within ±25% of it.
    const typical = MS_MIN + ((MS_MAX - MS_MIN) * GPU_SIZES.indexOf(gpus)) / (GPU_SIZES.length - 1);
    const ms = Math.round(typical * (0.75 + rand() * 0.5));
    return { queue: `training-${gpuModel(pool, gpus)}`, pool, gpus, ms, order };
  });
}

interface FleetRun {
  makespanMs: number;
  idealMs: number;
  poolIdealMs: number;
  busyLeased: number;
  busyUseful: number;
  longest4Wait: number;
  worst4Ratio: number;
  fair4Wait: number;
  completed: number;
  failed: number;
  firstFailure?: string;
  /** Median start (processedOn - first add) of the jobs of each size. */
  medianStart: Record<number, number>;
}

async function runFleet(policy: DispatchPolicy, guardMs: number, deadline: number, schema: string): Promise<FleetRun> {
  const cleanup = new Cleanup();
  const prefix = uniqueName('gpu');
  cleanup.add(() => deletePrefix(prefix));
  try {
    // Training jobs get an output folder under their model's checkpoint folder: a temporary one.
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'caelum-bench-gpu-'));
    cleanup.add(async () => rmSync(dataDir, { recursive: true, force: true }));
    const fleet = gpuFleet(HOSTS, GPUS_PER_HOST, path.join(dataDir, 'checkpoints'));
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    cleanup.add(async () => redis.disconnect());
    const queues = new QueueSet(fleet, redis, prefix, logger);
    cleanup.add(() => queues.close());
    const pool = createPool(DATABASE_URL, logger, { schema, max: 4 });
    cleanup.add(() => pool.end());
    const workers = await startTestWorkers(
      fleet,
      prefix,
      pool,
      gpuHostIds(HOSTS),
      { ...DEFAULT_HOST_WORKER_OPTIONS, starvationGuardMs: guardMs, dispatchPolicy: policy },
      undefined,
      { dataDir, version: 'bench' },
    );
    cleanup.add(() => workers.close());

    const jobs = plan();
    const byQueue = new Map<string, Planned[]>();
    for (const j of jobs) byQueue.set(j.queue, [...(byQueue.get(j.queue) ?? []), j]);
    // Added in the planned order, one add after another on one connection, so the jobs' timestamps
    // (what the starvation rule compares) follow that order across queues.
    const at = new Date().toISOString();
    await Promise.all(
      jobs.map((j) =>
        queues.get(j.queue)!.queue.add(
          'training',
          {
            kind: 'training',
            payload: { model: j.queue.slice('training-'.length), params: { ms: j.ms, order: j.order } },
            trigger: { reason: 'api', by: 'bench', at },
          },
          { jobId: `${j.queue}.${randomUUID()}` },
        ),
      ),
    );
    const entries = [...byQueue.keys()].map((q) => queues.get(q)!.queue);
    let completed = 0;
    let failed = 0;
    while (completed + failed < jobs.length && Date.now() < deadline) {
      await sleep(50);
      const counts = await Promise.all(entries.map((q) => q.getJobCounts('completed', 'failed')));
      completed = counts.reduce((a, c) => a + (c.completed ?? 0), 0);
      failed = counts.reduce((a, c) => a + (c.failed ?? 0), 0);
    }
    const done = (await Promise.all(entries.map((q) => q.getJobs(['completed'], 0, -1)))).flat() as Job[];
    let firstFailure: string | undefined;
    if (failed) firstFailure = (await Promise.all(entries.map((q) => q.getFailed(0, 0)))).flat()[0]?.failedReason;

    const byOrder = new Map(jobs.map((j) => [j.order, j]));
    const t0 = Math.min(...done.map((j) => j.timestamp));
    const makespanMs = Math.max(...done.map((j) => j.finishedOn!)) - t0;
    const totalGpus = HOSTS * GPUS_PER_HOST;
    const gpuMs = jobs.reduce((a, j) => a + j.gpus * j.ms, 0);
    const longest = Math.max(...jobs.map((j) => j.ms));
    const idealMs = Math.max(gpuMs / totalGpus, longest);
    const poolIdealMs = Math.max(
      ...GPU_POOLS.map((p) => jobs.filter((j) => j.pool === p).reduce((a, j) => a + j.gpus * j.ms, 0) / (fleet.pools[p]!.length * GPUS_PER_HOST)),
      longest,
    );
    const starts: Record<number, number[]> = { 1: [], 2: [], 4: [] };
    let leased = 0;
    let useful = 0;
    let longest4Wait = 0;
    let worst4Ratio = 0;
    let fair4Wait = 0;
    for (const job of done) {
      const p = byOrder.get(Number((job.data as { payload: { params: { order: number } } }).payload.params.order))!;
      leased += p.gpus * (job.finishedOn! - job.processedOn!);
      useful += p.gpus * p.ms;
      starts[p.gpus]!.push(job.processedOn! - t0);
      if (p.gpus !== 4) continue;
      // Its fair share: the wait under perfectly packed first-come-first-served in its pool
      // (the GPU time of the pool's jobs added before it, spread over the pool's GPUs), and
      // never less than the longest job, which any job may have to wait for.
      const poolGpus = fleet.pools[p.pool]!.length * GPUS_PER_HOST;
      const ahead = jobs.filter((j) => j.pool === p.pool && j.order < p.order).reduce((a, j) => a + j.gpus * j.ms, 0);
      const fair = Math.max(ahead / poolGpus, longest);
      const wait = job.processedOn! - job.timestamp;
      if (wait > longest4Wait) {
        longest4Wait = wait;
        fair4Wait = fair;
      }
      worst4Ratio = Math.max(worst4Ratio, wait / fair);
    }
    return {
      makespanMs,
      idealMs,
      poolIdealMs,
      busyLeased: leased / (totalGpus * makespanMs),
      busyUseful: useful / (totalGpus * makespanMs),
      longest4Wait,
      worst4Ratio,
      fair4Wait,
      completed,
      failed,
      medianStart: Object.fromEntries(Object.entries(starts).map(([k, v]) => [k, percentile(v, 50)])),
      ...(firstFailure ? { firstFailure } : {}),
    };
  } finally {
    await cleanup.run();
  }
}

const bound = (r: FleetRun) => Math.max(r.idealMs, r.poolIdealMs);

export async function gpuFleetBench(budgetMs: number): Promise<BenchResult> {
  const start = Date.now();
  const guard = Number(process.env.BENCH_GPU_GUARD_MS || DEFAULT_HOST_WORKER_OPTIONS.starvationGuardMs);
  const db = await createSchema('gpu');
  try {
    const rows: BenchResult['rows'] = [];
    for (const [i, policy] of POLICIES.entries()) {
      const r = await runFleet(policy, guard, start + ((i + 1) * budgetMs) / POLICIES.length - 2000, db.schema);
      const label = `policy ${policy}${policy === DEFAULT_HOST_WORKER_OPTIONS.dispatchPolicy ? ' (default)' : ''}`;
      const partial = r.completed < JOBS ? ` (${r.completed}/${JOBS} done in budget${r.failed ? `, ${r.failed} failed: ${r.firstFailure}` : ''})` : '';
      const goals = policy === DEFAULT_HOST_WORKER_OPTIONS.dispatchPolicy;
      rows.push(
        {
          figure: `4. GPU fleet (${label}): makespan, ms`,
          ours: `${fmt(r.makespanMs, 0)}${partial}`,
          // Jobs are pinned to their pool: the busiest pool's GPU time over its GPUs is the real limit.
          baseline: `${fmt(bound(r), 0)} ideal lower bound (the busiest pool's; whole fleet: ${fmt(r.idealMs, 0)})`,
          ratio: `${fmt(r.makespanMs / bound(r), 2)}x`,
          goal: goals ? `<= 1.15x: ${r.makespanMs / bound(r) <= 1.15 ? 'met' : 'MISSED'}` : 'report',
        },
        {
          figure: `4. GPU fleet (${label}): busy fraction of the GPUs (leased; useful sleep; dispatch overhead = leased - useful)`,
          ours: `${fmt(r.busyLeased, 3)}; ${fmt(r.busyUseful, 3)}; ${fmt(r.busyLeased - r.busyUseful, 3)}`,
          baseline: '1.0',
          ratio: `${fmt(r.busyLeased, 3)}x`,
          goal: goals ? `>= 0.9: ${r.busyLeased >= 0.9 ? 'met' : 'MISSED'}` : 'report',
        },
        {
          figure: `4. GPU fleet (${label}): longest wait of a 4-GPU job, ms`,
          ours: `${fmt(r.longest4Wait, 0)} (worst wait/fair share over 4-GPU jobs: ${fmt(r.worst4Ratio, 2)}x; median start of 1/2/4-GPU jobs: ${[1, 2, 4].map((g) => fmt(r.medianStart[g]!, 0)).join(' / ')} ms)`,
          baseline: `${fmt(r.fair4Wait, 0)} its fair share`,
          ratio: `${fmt(r.longest4Wait / r.fair4Wait, 2)}x`,
          goal: goals ? `worst <= 2x fair share: ${r.worst4Ratio <= 2 ? 'met' : 'MISSED'}` : 'report',
        },
      );
    }
    return {
      rows,
      notes: [
        `GPU fleet: ${HOSTS} fake hosts x ${GPUS_PER_HOST} fake GPUs in 2 pools of 4 hosts, run as in-process HostWorkers (startWorkers with ${HOSTS} host ids in the benchmark process, not separate processes, to spare the 2 cores); ` +
          `${JOBS} training jobs, a seeded mix of pools and 1/2/4-GPU models, each sleeping ${MS_MIN}-${MS_MAX} ms in /bin/sh bench/sleeper.sh; added at once in that order (one queue.add after another, pipelined); starvation guard ${guard} ms; each policy of ${POLICIES.join(', ')} runs the same jobs on fresh queues (learned durations start empty each time); worker options otherwise the defaults. ` +
          'Busy (leased) = sum of gpus x (finishedOn - processedOn) / (GPUs x makespan); useful = the same with the nominal sleep; their difference is the dispatch overhead (spawning, bookkeeping, the gap between a child\'s exit and the next start). Fair share of a 4-GPU job = the GPU time of its pool\'s jobs added before it / the pool\'s GPUs, at least the longest job.',
      ],
    };
  } finally {
    await db.drop();
  }
}
