// Host workers against the real Redis, running the example programs as real child processes.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet, type LoadedFleet } from '../src/config/load-fleet.js';
import { requestCancel } from '../src/queues/cancel-requests.js';
import { enqueue } from '../src/queues/enqueue.js';
import type { JobKind } from '../src/queues/kinds.js';
import type { JobRunResult } from '../src/workers/processors/result.js';
import type { RunningWorkers } from '../src/workers/start-workers.js';
import { asOperator, asReader, startApi, type ApiHarness } from './helpers/api.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { uniqueName } from './helpers/servers.js';
import { pidAlive, waitFor } from './helpers/wait.js';
import { startTestWorkers } from './helpers/workers.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';

const checkpoints = mkdtempSync(path.join(os.tmpdir(), 'caelum-ckpt-'));
const gpu = (index: number) => ({ index, name: `Fake GPU ${index}`, memoryMiB: 8192 });
const trainer = (attempts = 1) => ({
  command: ['node', 'examples/trainer.mjs', '--epochs', '1', '--epoch-ms', '100'],
  timeoutSeconds: 60,
  attempts,
  backoffSeconds: 0.2,
});
const validator = { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 };
const model = (pool: string, gpusPerRun: number, attempts = 1) => ({
  pool,
  gpusPerRun,
  train: trainer(attempts),
  validate: validator,
  checkpointDir: path.join(checkpoints, `${pool}-${gpusPerRun}-${attempts}`),
});

const fleet: LoadedFleet = parseFleet(
  {
    hosts: {
      'host-a': { gpus: [gpu(0), gpu(1)], cpuSlots: 1 },
      'host-b': { gpus: [gpu(0)], cpuSlots: 1 },
    },
    pools: { alpha: ['host-a'], beta: ['host-b'], everyone: ['host-a', 'host-b'] },
    models: {
      big: model('alpha', 2),
      small: model('alpha', 1),
      yield: model('beta', 1, 3),
      flaky: model('beta', 1, 2),
      slow: { ...model('beta', 1), train: { ...trainer(1), timeoutSeconds: 0.8 } },
    },
    backtest: { pool: 'everyone', command: ['node', 'examples/backtester.mjs', '--bars', '40', '--bar-ms', '5'], timeoutSeconds: 60 },
    dataSync: { pool: 'everyone', command: ['node', 'examples/data-syncer.mjs', '--rows', '10', '--delay-ms', '50'], timeoutSeconds: 60 },
  },
  '(workers test)',
  REPO_ROOT,
);

let api: ApiHarness;
let db: TestSchema;
let workers: RunningWorkers | undefined;
beforeAll(async () => {
  db = await createTestSchema('workers');
  api = await startApi({ fleet, prefix: uniqueName('workers'), schema: db.schema });
});
afterEach(async () => {
  await workers?.close();
  workers = undefined;
  // Each test starts from empty queues.
  await Promise.all(api.queues.all().map((e) => e.queue.obliterate({ force: true })));
});
afterAll(async () => {
  await api.close();
  await db.drop();
});

const add = (kind: JobKind, payload: object) =>
  enqueue({ fleet, queues: api.queues }, kind, payload, { reason: 'api', by: 'test', at: new Date().toISOString() });

async function jobOf(id: string): Promise<Job> {
  const queue = id.slice(0, id.indexOf('.'));
  const job = await api.queues.get(queue)!.queue.getJob(id);
  if (!job) throw new Error(`no job ${id}`);
  return job;
}

const view = async (id: string) => (await api.app.inject({ method: 'GET', url: `/api/jobs/${id}`, headers: asReader })).json();

async function finished(id: string, timeoutMs = 30_000): Promise<Job> {
  return waitFor(`job ${id} to finish`, async () => {
    const job = await jobOf(id);
    return job.finishedOn ? job : undefined;
  }, { timeoutMs });
}

const active = (id: string) =>
  waitFor(`${id} to start`, async () => ((await jobOf(id)).processedOn ? true : undefined));

/** The trainer's pid, once its first progress line is visible through the API. */
const trainerPid = (id: string) =>
  waitFor(`progress of ${id}`, async () => {
    const v = await view(id);
    return v.state === 'active' && typeof v.progress?.pid === 'number' ? (v.progress.pid as number) : undefined;
  });

describe('GPU leases', () => {
  it('never lets two jobs share a GPU, and gives each exactly its GPUs in CUDA_VISIBLE_DEVICES', async () => {
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-a']);
    const ids: { id: string; gpus: number }[] = [];
    for (let i = 0; i < 6; i++) {
      ids.push({ id: (await add('training', { model: 'big', params: { epoch_ms: 150 } })).id, gpus: 2 });
      ids.push({ id: (await add('training', { model: 'small', params: { epoch_ms: 150 } })).id, gpus: 1 });
    }
    const runs: { gpus: number[]; start: number; end: number }[] = [];
    for (const { id, gpus } of ids) {
      const job = await finished(id);
      expect(await job.getState()).toBe('completed');
      const result = job.returnvalue as JobRunResult;
      expect(result.host).toBe('host-a');
      expect(result.gpus).toHaveLength(gpus);
      const child = result.result as { cudaVisibleDevices: string; startedAt: number; endedAt: number };
      expect(child.cudaVisibleDevices).toBe(result.gpus.join(','));
      runs.push({ gpus: result.gpus, start: child.startedAt, end: child.endedAt });
    }
    for (const g of [0, 1]) {
      const onGpu = runs.filter((r) => r.gpus.includes(g)).sort((a, b) => a.start - b.start);
      for (let i = 1; i < onGpu.length; i++) expect(onGpu[i]!.start).toBeGreaterThanOrEqual(onGpu[i - 1]!.end);
    }
    // Both GPUs were really used at once by 1-GPU jobs at some point, or by 2-GPU jobs.
    expect(runs.some((r) => r.gpus.length === 2)).toBe(true);
  });

  it('holds GPUs for a 2-GPU job instead of starving it with 1-GPU jobs (starvation guard 0)', async () => {
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-a'], { starvationGuardMs: 0 });
    const first = await add('training', { model: 'small', params: { epochs: 3, epoch_ms: 400 } });
    await active(first.id);
    const big = await add('training', { model: 'big', params: { epoch_ms: 100 } });
    const smalls = [];
    for (let i = 0; i < 4; i++) smalls.push(await add('training', { model: 'small', params: { epoch_ms: 300 } }));
    const bigJob = await finished(big.id);
    const smallJobs = await Promise.all(smalls.map((s) => finished(s.id)));
    for (const s of smallJobs) expect(s.processedOn!).toBeGreaterThan(bigJob.processedOn!);
  });
});

describe('placement and order', () => {
  it('serves the oldest waiting job first among training queues, whatever the config order', async () => {
    // "big" is listed before "small"; the small job has waited longer.
    const small = await add('training', { model: 'small', params: { epoch_ms: 200 } });
    // Job timestamps are in milliseconds: make sure the big job is really the younger one.
    const addedAt = (await jobOf(small.id)).timestamp;
    await waitFor('the clock to move on', () => Date.now() > addedAt, { intervalMs: 1 });
    const big = await add('training', { model: 'big', params: { epoch_ms: 100 } });
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-a']);
    const [s, b] = [await finished(small.id), await finished(big.id)];
    expect(s.processedOn!).toBeLessThan(b.processedOn!);
  });

  it('pins each model to the hosts of its pool, and lists both live workers', async () => {
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-a', 'host-b']);
    const ys = await Promise.all([1, 2, 3].map(() => add('training', { model: 'yield' })));
    const ss = await Promise.all([1, 2, 3].map(() => add('training', { model: 'small' })));
    for (const { id } of ys) expect(((await finished(id)).returnvalue as JobRunResult).host).toBe('host-b');
    for (const { id } of ss) expect(((await finished(id)).returnvalue as JobRunResult).host).toBe('host-a');

    const res = await api.app.inject({ method: 'GET', url: '/api/workers', headers: asReader });
    const listed = res.json().workers as { host: string; gpus: unknown[]; queues: string[] }[];
    expect(listed.map((w) => w.host)).toEqual(['host-a', 'host-b']);
    expect(listed[0]!.gpus).toHaveLength(2);
    expect(listed[1]!.queues).toEqual(expect.arrayContaining(['training-yield', 'data-sync', 'backtest']));
    expect(listed[1]!.queues).not.toContain('training-small');
  });

  it('serves data sync before backtests when a CPU slot frees', async () => {
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b']);
    const long = await add('backtest', { model: 'yield', symbols: ['AAA', 'BBB', 'CCC'] });
    await active(long.id);
    const later = await add('backtest', { model: 'yield', symbols: ['DDD'] });
    const sync = await add('data-sync', { symbol: 'AAPL' });
    const [b, d] = [await finished(later.id), await finished(sync.id)];
    expect(d.processedOn!).toBeLessThan(b.processedOn!);
    expect(d.returnvalue).toMatchObject({ skipped: false, symbol: 'AAPL', timeframe: '1d', rows: 10 });
    expect((b.returnvalue as JobRunResult).metrics).toHaveProperty('sharpe_ratio');
  });

  it('passes a CPU slot straight to the next backtest with the completion (one Redis script)', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await add('backtest', { model: 'yield', symbols: ['AAA'] })).id);
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b']);
    const jobs = await Promise.all(ids.map((id) => finished(id)));
    expect(jobs.every((j) => j.returnvalue && !j.failedReason)).toBe(true);
    const byStart = [...jobs].sort((a, b) => a.processedOn! - b.processedOn!);
    expect(byStart.map((j) => j.id)).toEqual(ids);
    // BullMQ's fetch-next starts the next job in the script that completes the previous one:
    // same timestamp. A dispatch pass would start it after a wake-up, later.
    for (let i = 1; i < byStart.length; i++) expect(byStart[i]!.processedOn).toBe(byStart[i - 1]!.finishedOn);
  });

  it('says why a job waits', async () => {
    const idle = await add('training', { model: 'yield' });
    expect((await view(idle.id)).waitingFor).toBe('waiting: no live worker in pool beta (host-b not running)');
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b']);
    await finished(idle.id);
    const busy = await add('training', { model: 'yield', params: { epoch_ms: 5000 } });
    const blocker = await add('training', { model: 'yield', params: { epoch_ms: 5000 } });
    await active(busy.id);
    await waitFor('the reason to name the busy GPU', async () =>
      (await view(blocker.id)).waitingFor === 'waiting for 1 free GPU in pool beta; host-b has 0 free' ? true : undefined,
    );
  });
});

describe('running a job', () => {
  it('shows live progress through the API while the trainer runs, and logs its lines', async () => {
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b']);
    const { id } = await add('training', { model: 'yield', params: { epochs: 4, epoch_ms: 300 } });
    const seen = await waitFor('epoch 2 in progress', async () => {
      const v = await view(id);
      return v.state === 'active' && v.progress?.epoch >= 2 ? v : undefined;
    });
    expect(seen.progress).toMatchObject({ epochs: 4, metrics: { val_accuracy: expect.any(Number) } });
    const done = await finished(id);
    const result = done.returnvalue as JobRunResult;
    expect(result.checkpoints).toHaveLength(1);
    expect(result.checkpoints[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(result.checkpoints[0]!.path.startsWith(fleet.models.yield!.checkpointDir)).toBe(true);
    const logs = (await view(id)).logs as string[];
    expect(logs.some((l) => l.startsWith('epoch 4/4'))).toBe(true);
  });

  it('retries a trainer that exits 1, with the tail of its stderr in the failure reason', async () => {
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b']);
    const { id } = await add('training', { model: 'flaky', params: { fail_at_epoch: 1, epoch_ms: 50 } });
    const job = await finished(id);
    expect(await job.getState()).toBe('failed');
    expect(job.attemptsMade).toBe(2);
    expect(job.failedReason).toMatch(/^exit code 1: /);
    expect(job.failedReason).toContain('CUDA error: out of memory at epoch 1 (simulated)');
  });

  it("ends a job at its model's timeout", async () => {
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b']);
    const { id } = await add('training', { model: 'slow', params: { epochs: 100, epoch_ms: 100 } });
    const pid = await trainerPid(id);
    const job = await finished(id);
    expect(job.failedReason).toBe('timed out after 0.8 s');
    expect(pidAlive(pid)).toBe(false);
  });

  it('cancels a running job: its process group ends, it fails as cancelled without retry, its GPU is free', async () => {
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b']);
    const { id } = await add('training', { model: 'yield', params: { epochs: 100, epoch_ms: 200 } });
    const pid = await trainerPid(id);
    const res = await api.app.inject({ method: 'POST', url: `/api/jobs/${id}/cancel`, headers: asOperator });
    expect(res.statusCode).toBe(202);
    const job = await finished(id, 10_000);
    expect(await job.getState()).toBe('failed');
    expect(job.failedReason).toBe('cancelled');
    expect(job.attemptsMade).toBe(1);
    expect(pidAlive(pid)).toBe(false);
    // The GPU is free again: the next job runs.
    const next = await add('training', { model: 'yield' });
    expect(await (await finished(next.id)).getState()).toBe('completed');
  });

  it('lets a cancel that arrived before the child started win: the child never runs', async () => {
    const { id } = await add('training', { model: 'yield' });
    // The job is taken off the queue after the request is written, as when a cancel races the dequeue.
    await requestCancel(api.redis, api.prefix, id, 'test');
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b']);
    const job = await finished(id);
    expect(job.failedReason).toBe('cancelled');
    expect(job.progress).toBe(0);
    expect((await view(id)).logs).toEqual([]);
  });

  it('on shutdown ends a job that outlives the grace period and hands it back to its queue', async () => {
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b'], { shutdownGraceMs: 300 });
    const { id } = await add('training', { model: 'yield', params: { epochs: 100, epoch_ms: 200 } });
    const pid = await trainerPid(id);
    await workers.close();
    workers = undefined;
    expect(pidAlive(pid)).toBe(false);
    const job = await jobOf(id);
    expect(await job.getState()).toBe('waiting');
    expect(job.attemptsMade).toBe(0);
  });
});
