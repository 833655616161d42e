// Warm runners: one long-lived process per slot takes job after job on standard input. Real
// host workers, real Redis and Postgres, a real child (test/fixtures/warm-backtester.mjs).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet, type LoadedFleet } from '../src/config/load-fleet.js';
import type { FleetInput } from '../src/config/fleet-schema.js';
import { requestCancel } from '../src/queues/cancel-requests.js';
import { enqueue } from '../src/queues/enqueue.js';
import type { JobRunResult } from '../src/workers/processors/result.js';
import type { RunningWorkers } from '../src/workers/start-workers.js';
import { startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { uniqueName } from './helpers/servers.js';
import { pidAlive, waitFor } from './helpers/wait.js';
import { startTestWorkers } from './helpers/workers.js';

const checkpoints = mkdtempSync(path.join(os.tmpdir(), 'caelum-warm-'));
type Runner = Extract<FleetInput['backtest']['runner'], { mode: 'warm' }>;

function warmFleet(runner: Partial<Runner> = {}, backtest: Partial<FleetInput['backtest']> = {}): LoadedFleet {
  return parseFleet(
    {
      hosts: { 'host-w': { gpus: [{ index: 0, name: 'Fake GPU 0', memoryMiB: 8192 }], cpuSlots: 1 } },
      pools: { warm: ['host-w'] },
      models: {
        m: {
          pool: 'warm',
          train: { command: ['node', 'examples/trainer.mjs'], timeoutSeconds: 60 },
          validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 },
          checkpointDir: path.join(checkpoints, 'm'),
        },
      },
      backtest: {
        pool: 'warm',
        command: ['node', 'test/fixtures/warm-backtester.mjs'],
        runner: { mode: 'warm', maxJobs: 100, maxRssMiB: 1024, idleSeconds: 60, ...runner },
        timeoutSeconds: 20,
        // Retries come from the queue the API enqueued on (this file's `fleet`).
        attempts: 2,
        backoffSeconds: 0.1,
        ...backtest,
      },
      dataSync: { pool: 'warm', command: ['node', 'examples/data-syncer.mjs'], timeoutSeconds: 60 },
    },
    '(warm runner test)',
    REPO_ROOT,
  );
}

const fleet = warmFleet();
let api: ApiHarness;
let db: TestSchema;
let workers: RunningWorkers | undefined;
beforeAll(async () => {
  db = await createTestSchema('warm');
  api = await startApi({ fleet, prefix: uniqueName('warm'), schema: db.schema });
});
afterEach(async () => {
  await workers?.close();
  workers = undefined;
  await Promise.all(api.queues.all().map((e) => e.queue.obliterate({ force: true })));
});
afterAll(async () => {
  await api.close();
  await db.drop();
  rmSync(checkpoints, { recursive: true, force: true });
});

const start = (f: LoadedFleet = fleet) => startTestWorkers(f, api.prefix, db.pool, ['host-w']).then((w) => (workers = w));
const backtest = async (symbol: string) =>
  (await enqueue({ fleet, queues: api.queues }, 'backtest', { model: 'm', symbols: [symbol], timeframe: '1d' }, { reason: 'api', by: 'test', at: new Date().toISOString() })).id;

async function jobOf(id: string): Promise<Job> {
  const job = await api.queues.get('backtest')!.queue.getJob(id);
  if (!job) throw new Error(`no job ${id}`);
  return job;
}
const finished = (id: string) => waitFor(`job ${id} to finish`, async () => ((await jobOf(id)).finishedOn ? jobOf(id) : undefined));
const metricsOf = (job: Job) => (job.returnvalue as JobRunResult & { metrics: { pid: number; jobs: number; envOk: number; sharpe_ratio: number } }).metrics;

/** Runs an ordinary job to completion; its metrics say which process ran it and how many jobs that process had run. */
async function runOk(symbol = 'AAPL') {
  const job = await finished(await backtest(symbol));
  expect(job.failedReason).toBeUndefined();
  expect(await job.getState()).toBe('completed');
  return metricsOf(job);
}

describe('warm runner', () => {
  it('runs several jobs in one process, each with its own variables, events and log', async () => {
    await start();
    const runs = [];
    for (const symbol of ['AAPL', 'MSFT', 'NVDA']) runs.push(await runOk(symbol));
    expect(new Set(runs.map((r) => r.pid)).size).toBe(1);
    expect(runs.map((r) => r.jobs)).toEqual([1, 2, 3]);
    expect(runs.every((r) => r.envOk === 1)).toBe(true);
    // The event tagged with another job's id was dropped, not taken as this job's result.
    expect(runs.every((r) => r.sharpe_ratio === 1)).toBe(true);
    const id = await backtest('AMD');
    const job = await finished(id);
    const { logs } = await api.queues.get('backtest')!.queue.getJobLogs(id);
    expect(logs).toContain(`job ${id} in ${runs[0]!.pid}`);
    expect(logs).toContain(`[stderr] stderr of ${id}`);
    expect(logs.some((l) => l.includes('dropped an event of another job (someone-else)'))).toBe(true);
    expect(job.progress).toEqual({ percent: 50 });
  });

  it('a job the process reports as failed fails alone; the process takes the next job', async () => {
    await start();
    const before = await runOk();
    const failed = await finished(await backtest('FAIL'));
    expect(failed.failedReason).toBe('no bars for FAIL');
    expect(failed.attemptsMade).toBe(2); // retried, like a non-zero exit
    const after = await runOk();
    expect(after.pid).toBe(before.pid);
    expect(after.jobs).toBe(4);
  });

  it('a crash fails only the job it was running (retried), and the next job gets a fresh process', async () => {
    await start();
    const before = await runOk();
    const crashed = await finished(await backtest('CRASH'));
    expect(crashed.attemptsMade).toBe(2);
    expect(crashed.failedReason).toMatch(/^exit code 3: [\s\S]*crashing on purpose/);
    expect(pidAlive(before.pid)).toBe(false);
    const after = await runOk();
    expect(after.pid).not.toBe(before.pid);
    expect(after.jobs).toBe(1);
  });

  it('a timeout ends the process and fails the job; the next job gets a fresh process', async () => {
    await start(warmFleet({}, { timeoutSeconds: 1 }));
    const before = await runOk();
    const timedOut = await finished(await backtest('HANG'));
    expect(timedOut.failedReason).toBe('timed out after 1 s');
    expect(pidAlive(before.pid)).toBe(false);
    const after = await runOk();
    expect(after.pid).not.toBe(before.pid);
  });

  it('a cancel ends the process; the job fails as cancelled and the next gets a fresh process', async () => {
    await start();
    const before = await runOk();
    const id = await backtest('HANG');
    await waitFor('the hanging job to report progress', async () => ((await jobOf(id)).progress as { percent?: number })?.percent === 50);
    await requestCancel(api.redis, api.prefix, id, 'test');
    const job = await finished(id);
    expect(job.failedReason).toBe('cancelled');
    expect(pidAlive(before.pid)).toBe(false);
    const after = await runOk();
    expect(after.pid).not.toBe(before.pid);
  });

  it('replaces a process after maxJobs jobs, and one above maxRssMiB', async () => {
    await start(warmFleet({ maxJobs: 2, maxRssMiB: 100 }));
    const [a, b, c] = [await runOk(), await runOk(), await runOk()];
    expect(b.pid).toBe(a.pid);
    expect(c.pid).not.toBe(a.pid);
    await waitFor('the recycled process to exit', () => !pidAlive(a.pid));
    const leaky = await runOk('LEAK');
    expect(leaky.pid).toBe(c.pid);
    const next = await runOk();
    expect(next.pid).not.toBe(c.pid);
    await waitFor('the process above maxRssMiB to exit', () => !pidAlive(c.pid));
  });

  it('ends a process idle for idleSeconds, and the worker ends its processes when it stops', async () => {
    await start(warmFleet({ idleSeconds: 0.5 }));
    const idle = await runOk();
    await waitFor('the idle process to exit', () => !pidAlive(idle.pid), { timeoutMs: 10_000 });
    await workers!.close();
    await start();
    const busy = await runOk();
    expect(pidAlive(busy.pid)).toBe(true);
    await workers!.close();
    workers = undefined;
    expect(pidAlive(busy.pid)).toBe(false);
  });
});
