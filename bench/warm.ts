// 9. Warm runners (README, "Warm runners"): N backtests of one Python backtester that imports
// numpy and computes for ~20 ms (bench/python/backtest.py), run (a) cold through our worker, a
// process per job; (b) warm through our worker, one long-lived process per slot; (c) as a Celery
// task on the same Redis with a prefork pool of the same size (bench/python/celery_bench.py).
// For each: jobs/s with every job added at once, and add -> start (the job's own code reports
// when it began) with jobs added one at a time on an idle worker. Same interpreter for all three.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { type Job, type JobsOptions, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueSet } from '../src/queues/queue-set.js';
import { jobData } from './dispatch.js';
import { type BenchRunner, cpuFleet } from './fleets.js';
import { type BenchResult, BENCH_DIR, Cleanup, createSchema, deletePrefix, fmt, logger, percentile, preciseNow, REDIS_URL, REPO_ROOT, sleep, uniqueName } from './lib.js';
import { startWorkerProc } from './proc.js';

const run = promisify(execFile);
const BACKTEST = path.join('bench', 'python', 'backtest.py');
export const CELERY_SKIPPED = 'skipped: Celery is not installed (apt-get install python3-celery python3-numpy)';
const SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'AMZN', 'GOOG', 'META', 'TSLA', 'SPY', 'QQQ', 'IWM'];

const env = (name: string, fallback: number) => Number(process.env[name] || fallback);

interface Knobs {
  concurrency: number;
  jobs: number;
  coldJobs: number;
  latencyJobs: number;
  bars: number;
  celeryDb: number;
}

/** One system's figures (the Celery script prints the same fields). */
interface Outcome {
  jobs: number;
  jobsPerSec: number;
  latencyMs: { p50: number; p95: number; p99: number; n: number };
  loadLatencyP50Ms: number;
  computeMsP50: number;
  cpuMsP50: number;
  /** Celery's version (its row only). */
  celery?: string;
  /** Ours: how many processes ran the counted jobs (a warm runner: about one per slot). */
  processes?: number;
  failed?: number;
  firstFailure?: string;
}

interface Metrics {
  startedAtMs: number;
  computeMs: number;
  cpuMs: number;
  pid: number;
}

/** The interpreter for all three rows: Debian's when it has Celery and numpy, else one with numpy. */
async function pickPython(): Promise<{ python?: string; celery: boolean }> {
  const has = (python: string, modules: string) =>
    run(python, ['-c', `import ${modules}`]).then(
      () => true,
      () => false,
    );
  if (await has('/usr/bin/python3', 'celery, numpy')) return { python: '/usr/bin/python3', celery: true };
  for (const python of ['/usr/bin/python3', 'python3']) if (await has(python, 'numpy')) return { python, celery: false };
  return { celery: false };
}

const backtestJob = (i: number) => {
  const data = jobData();
  return { ...data, payload: { ...data.payload, symbols: [SYMBOLS[i % SYMBOLS.length]!] } };
};
const metricsOf = (job: Job | undefined) => (job?.returnvalue as { metrics?: Partial<Metrics> } | null)?.metrics;

/** Our worker in its own process, the backtest command cold or warm. */
async function runOurs(python: string, runner: BenchRunner, k: Knobs, jobs: number, deadline: number, schema: string): Promise<Outcome> {
  const prefix = uniqueName(`warm${runner?.mode ?? 'cold'}`);
  const cleanup = new Cleanup();
  cleanup.add(() => deletePrefix(prefix));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  cleanup.add(async () => redis.disconnect());
  try {
    const command = [python, BACKTEST, '--bars', String(k.bars)];
    const set = new QueueSet(cpuFleet(k.concurrency, command, {}, runner), redis, prefix, logger);
    cleanup.add(() => set.close());
    const queue = set.get('backtest')!.queue;
    const events = new QueueEvents('backtest', { connection: { url: REDIS_URL }, prefix });
    cleanup.add(() => events.close());
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    const proc = await startWorkerProc({ mode: 'ours', prefix, queue: 'backtest', concurrency: k.concurrency, command, runner, schema });
    cleanup.add(() => proc.stop().catch(() => 0));
    const left = () => Math.max(1000, deadline - Date.now());
    const add = (i: number) => queue.add('backtest', backtestJob(i), { jobId: `backtest.${randomUUID()}` });

    // Warm-up, not counted: a warm runner's processes start here, as a Celery pool's do before it is ready.
    const warmup = await Promise.all(Array.from({ length: 2 * k.concurrency }, (_, i) => add(i)));
    await Promise.all(warmup.map((j) => j.waitUntilFinished(events, left())));

    const latencies: number[] = [];
    for (let i = 0; i < k.latencyJobs && Date.now() < deadline; i++) {
      const addedAt = preciseNow();
      const job = await add(i);
      await job.waitUntilFinished(events, left());
      const startedAt = metricsOf(await queue.getJob(job.id!))?.startedAtMs;
      if (startedAt !== undefined) latencies.push(startedAt - addedAt);
    }

    const done = async () => (await queue.getCompletedCount()) + (await queue.getFailedCount());
    const before = await done();
    const firstAdd = preciseNow();
    const added = await queue.addBulk(
      Array.from({ length: jobs }, (_, i) => ({ name: 'backtest', data: backtestJob(i), opts: { jobId: `backtest.${randomUUID()}` } as JobsOptions })),
    );
    while ((await done()) < before + jobs && Date.now() < deadline) await sleep(50);
    const ended = (await Promise.all(added.map((j) => queue.getJob(j.id!)))).filter((j): j is Job => j?.finishedOn !== undefined);
    const finished = ended.filter((j) => !j.failedReason);
    const failed = ended.filter((j) => j.failedReason);
    const metrics = finished.map(metricsOf).filter((m): m is Metrics => m?.startedAtMs !== undefined);
    const elapsedMs = Math.max(...finished.map((j) => j.finishedOn!)) - firstAdd;
    return {
      jobs: finished.length,
      jobsPerSec: (finished.length / elapsedMs) * 1000,
      latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), n: latencies.length },
      loadLatencyP50Ms: percentile(metrics.map((m) => m.startedAtMs - firstAdd), 50),
      computeMsP50: percentile(metrics.map((m) => m.computeMs), 50),
      cpuMsP50: percentile(metrics.map((m) => m.cpuMs), 50),
      processes: new Set(metrics.map((m) => m.pid)).size,
      failed: failed.length,
      ...(failed[0] ? { firstFailure: failed[0].failedReason } : {}),
    };
  } finally {
    await cleanup.run();
  }
}

/** bench/python/celery_bench.py: its worker, its tasks, its figures as one JSON line. */
async function runCelery(python: string, k: Knobs, seconds: number): Promise<Outcome | { skipped: string }> {
  const args = [
    path.join(BENCH_DIR, 'python', 'celery_bench.py'),
    ...['--redis-url', REDIS_URL, '--db', String(k.celeryDb), '--concurrency', String(k.concurrency)],
    ...['--jobs', String(k.jobs), '--latency-jobs', String(k.latencyJobs), '--bars', String(k.bars), '--seconds', String(Math.floor(seconds))],
  ];
  try {
    const { stdout } = await run(python, args, { cwd: REPO_ROOT, timeout: (seconds + 30) * 1000, maxBuffer: 1 << 20 });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as Outcome | { skipped: string };
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    throw new Error(`celery_bench.py failed: ${(e.stderr || e.message || String(err)).trim().slice(-400)}`);
  }
}

const latency = (o: Outcome) => `${fmt(o.latencyMs.p50, 1)} / ${fmt(o.latencyMs.p95, 1)} / ${fmt(o.latencyMs.p99, 1)}`;
const rate = (o: Outcome, of: number) =>
  `${fmt(o.jobsPerSec, 1)}${o.jobs < of ? ` (${o.jobs}/${of} done in budget)` : ''}${o.failed ? `, ${o.failed} failed: ${o.firstFailure}` : ''}`;
const goal = (ratio: number, min: number) => `>= ${min.toFixed(1)}x: ${ratio >= min ? 'met' : 'MISSED'}`;

export async function warmBench(budgetMs: number): Promise<BenchResult> {
  const k: Knobs = {
    concurrency: env('BENCH_WARM_CONCURRENCY', 2),
    jobs: env('BENCH_WARM_JOBS', 500),
    coldJobs: env('BENCH_WARM_COLD_JOBS', 100),
    latencyJobs: env('BENCH_WARM_LATENCY_JOBS', 30),
    bars: env('BENCH_WARM_BARS', 50_000),
    celeryDb: env('BENCH_CELERY_REDIS_DB', 14),
  };
  const start = Date.now();
  const { python, celery } = await pickPython();
  const figure = `9. warm runners (${k.jobs} numpy backtests of ~20 ms, concurrency ${k.concurrency})`;
  if (!python) {
    const skipped = 'skipped: no python3 with numpy (apt-get install python3-numpy)';
    return { rows: [{ figure, ours: skipped, baseline: '', ratio: '', goal: '' }], notes: [] };
  }
  const calibration = (await run(python, [BACKTEST, '--bars', String(k.bars), '--calibrate', '20'], { cwd: REPO_ROOT })).stdout.trim().split('\n');
  const db = await createSchema('warm');
  try {
    // Shares of what is left of the budget: Celery's worker takes ~10 s to start and stop.
    const until = (share: number) => Date.now() + share * (budgetMs - (Date.now() - start)) - 2000;
    const cold = await runOurs(python, undefined, k, k.coldJobs, until(0.3), db.schema);
    const warm = await runOurs(python, { mode: 'warm' }, k, k.jobs, until(0.5), db.schema);
    const celeryOutcome = celery ? await runCelery(python, k, Math.max(20, (budgetMs - (Date.now() - start)) / 1000 - 5)) : { skipped: CELERY_SKIPPED };
    const [c, skipped] = 'skipped' in celeryOutcome ? [undefined, celeryOutcome.skipped] : [celeryOutcome, ''];
    const versusCelery = c ? warm.jobsPerSec / c.jobsPerSec : NaN;
    const versusCold = warm.jobsPerSec / cold.jobsPerSec;
    const describe = (o: Outcome) => `compute p50 ${fmt(o.computeMsP50, 1)} ms wall, ${fmt(o.cpuMsP50, 1)} ms CPU; add -> start p50 with all added at once ${fmt(o.loadLatencyP50Ms, 0)} ms`;
    return {
      rows: [
        {
          figure: `${figure}: jobs/s, warm (ours) vs Celery prefork`,
          ours: rate(warm, k.jobs),
          baseline: c ? `${rate(c, k.jobs)} Celery prefork` : skipped,
          ratio: c ? `${fmt(versusCelery, 2)}x` : '',
          goal: c ? goal(versusCelery, 1) : '>= 1.0x: not measured',
        },
        {
          figure: `${figure}: jobs/s, warm vs our cold path`,
          ours: rate(warm, k.jobs),
          baseline: `${rate(cold, k.coldJobs)} cold (${k.coldJobs} jobs)`,
          ratio: `${fmt(versusCold, 2)}x`,
          goal: goal(versusCold, 10),
        },
        {
          figure: `${figure}: add -> start, one job at a time, p50 / p95 / p99 ms, warm vs Celery prefork`,
          ours: `${latency(warm)} (${warm.latencyMs.n} jobs)`,
          baseline: c ? `${latency(c)} Celery prefork (${c.latencyMs.n} jobs)` : skipped,
          ratio: c ? `${warm.latencyMs.p50 >= c.latencyMs.p50 ? '+' : ''}${fmt(warm.latencyMs.p50 - c.latencyMs.p50, 1)} ms (p50)` : '',
          goal: 'report',
        },
        {
          figure: `${figure}: add -> start, one job at a time, p50 / p95 / p99 ms, warm vs our cold path`,
          ours: latency(warm),
          baseline: `${latency(cold)} cold (${cold.latencyMs.n} jobs)`,
          ratio: `${fmt(cold.latencyMs.p50 / warm.latencyMs.p50, 1)}x (cold p50 / warm p50)`,
          goal: 'report',
        },
      ],
      notes: [
        `warm runners: ${python} for all three rows (numpy${c?.celery ? `, Celery ${c.celery}` : ''}); ` +
          `bench/python/backtest.py --bars ${k.bars}: ${calibration.join('; ')}. ` +
          `Each row: ${2 * k.concurrency} uncounted warm-up jobs, then ${k.latencyJobs} jobs one at a time (add -> the job's own startedAtMs), ` +
          `then the jobs added at once (jobs/s = jobs / (last finish: BullMQ finishedOn, Celery date_done - first add)); ` +
          `cold ran ${k.coldJobs} jobs rather than ${k.jobs} to stay in budget (a rate either way). Our worker in its own process (bench/worker-proc.ts); ` +
          `Celery: prefork worker started by celery_bench.py with --without-gossip --without-mingle, otherwise defaults, Redis db ${k.celeryDb} as broker and backend.`,
        `warm runners, per row: cold: ${describe(cold)}; ${cold.processes} processes. warm: ${describe(warm)}; ` +
          `${warm.processes} processes ran its ${warm.jobs} counted jobs${warm.processes! > 4 * k.concurrency ? ' (so the worker ran the warm command cold: warm runners are not wired in yet)' : ''}.` +
          (c ? ` Celery: ${describe(c)}.` : ''),
      ],
    };
  } finally {
    await db.drop();
  }
}
