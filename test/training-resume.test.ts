// Trainings that survive: a rerun after a kill -9 of the worker resumes from the newest reported
// checkpoint whose file is still what was reported; a shutdown hands the job back after the
// trainer's grace checkpoint, without using an attempt, and the next start resumes from it; the
// registered checkpoint's lineage lists each attempt and where it resumed.
import { appendFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { enqueue } from '../src/queues/enqueue.js';
import type { TrainingAttempt } from '../src/registry/training-runs.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { waitFor } from './helpers/wait.js';
import { startTestWorkers } from './helpers/workers.js';
import { fleetFileHarness } from './helpers/fleet-file.js';

const example = (name: string) => ({ command: ['node', `examples/${name}.mjs`], cwd: REPO_ROOT, timeoutSeconds: 60 });
const h = fleetFileHarness('resume', (sandbox) => ({
  hosts: { 'gpu-r': { gpus: [{ index: 0, name: 'Fake GPU 0', memoryMiB: 8192 }], cpuSlots: 1 } },
  pools: { r: ['gpu-r'] },
  models: {
    resumer: {
      pool: 'r',
      // One attempt: a rerun that used one would fail instead of resuming.
      train: { ...example('trainer'), attempts: 1, stopGraceSeconds: 10 },
      validate: example('validator'),
      checkpointDir: path.join(sandbox, 'checkpoints'),
    },
  },
  backtest: { pool: 'r', ...example('backtester') },
  dataSync: { pool: 'r', ...example('data-syncer') },
}));

const queue = () => h.api.queues.get('training-resumer')!.queue;
const job = async (id: string) => (await queue().getJob(id)) as Job;
const train = (params: Record<string, unknown>) =>
  enqueue({ fleet: h.fleet, queues: h.api.queues }, 'training', { model: 'resumer', params }, { reason: 'api', by: 'test', at: new Date().toISOString() });
const completed = (id: string) => waitFor(`job ${id} to complete`, async () => ((await (await job(id)).getState()) === 'completed' ? job(id) : undefined), { timeoutMs: 60_000 });
const reported = (id: string) => h.api.registry.trainingRuns.checkpoints(id);
/** The checkpoint the job registered, with its lineage. */
async function registeredFor(id: string) {
  const { registered } = (await job(id)).returnvalue as { registered: { id: number }[] };
  expect(registered).toHaveLength(1);
  return (await h.api.registry.checkpoints.get(registered[0]!.id))!;
}

describe('resume', () => {
  it('after a kill -9 of the worker, the rerun resumes from the newest checkpoint whose file is unchanged, and the lineage says so', async () => {
    const worker = h.workerProcess('gpu-r');
    const { id } = await train({ epochs: 10, epoch_ms: 300, checkpoint_every: 1 });
    const before = await waitFor('six epochs reported', async () => {
      const rows = await reported(id);
      return rows.length >= 6 ? rows : undefined;
    });
    worker.kill('SIGKILL');
    await worker;
    // Somebody changed the newest file after it was reported: it is not resumed from.
    const newest = (await reported(id))[0]!;
    chmodSync(newest.path, 0o644); // the worker made it read-only when it hashed it
    appendFileSync(newest.path, ' ');
    const expectedFrom = (await reported(id))[1]!;
    expect(expectedFrom.epoch).toBeGreaterThanOrEqual(before[0]!.epoch! - 1);

    h.workers = await startTestWorkers(h.fleet, h.prefix, h.api.pool, ['gpu-r'], { stalledIntervalMs: 500 }, undefined, { dataDir: h.dataDir });
    // A stalled job's rerun: it completes on this one-attempt model, resumed.
    const done = await completed(id);
    expect((done.returnvalue as { result: { firstEpoch: number } }).result.firstEpoch).toBe(expectedFrom.epoch! + 1);

    const checkpoint = await registeredFor(id);
    const attempts = (checkpoint.lineage as { attempts: TrainingAttempt[] }).attempts;
    expect(attempts.map((a) => ({ attempt: a.attempt, resumedFrom: a.resumedFrom }))).toEqual([
      { attempt: 1, resumedFrom: null },
      { attempt: 2, resumedFrom: { path: expectedFrom.path, epoch: expectedFrom.epoch, attempt: 1 } },
    ]);
    // The final checkpoint alone is registered; the per-epoch ones were resume points.
    expect(checkpoint.path).toMatch(/resumer-e10\.pt$/);
    expect((await h.api.registry.checkpoints.list({ model: 'resumer', limit: 10, offset: 0 })).total).toBe(1);
  });

  it('a shutdown gives the trainer its grace to checkpoint, hands the job back without using an attempt, and the next start resumes there', async () => {
    h.workers = await startTestWorkers(h.fleet, h.prefix, h.api.pool, ['gpu-r'], { shutdownGraceMs: 100, killGraceMs: 100 }, undefined, {
      dataDir: h.dataDir,
    });
    // No per-epoch checkpoints: the only resume point is the one written on SIGTERM.
    const { id } = await train({ epochs: 12, epoch_ms: 250 });
    await waitFor('three epochs', async () => ((await job(id)).progress as { epoch?: number }).epoch! >= 3);
    await h.workers.close();
    h.workers = undefined;

    const back = await job(id);
    expect({ state: await back.getState(), attemptsMade: back.attemptsMade }).toEqual({ state: 'waiting', attemptsMade: 0 });
    const grace = (await reported(id))[0]!;
    expect(grace.path).toMatch(/grace-e\d+\.pt$/);
    expect(grace.epoch).toBeGreaterThanOrEqual(3);

    h.workers = await startTestWorkers(h.fleet, h.prefix, h.api.pool, ['gpu-r'], {}, undefined, { dataDir: h.dataDir });
    const done = await completed(id);
    expect((done.returnvalue as { result: { firstEpoch: number } }).result.firstEpoch).toBe(grace.epoch! + 1);
    const attempts = ((await registeredFor(id)).lineage as { attempts: TrainingAttempt[] }).attempts;
    expect(attempts.map((a) => [a.attempt, a.endedHow, a.resumedFrom?.epoch ?? null])).toEqual([
      [1, 'shutdown', null],
      [2, null, grace.epoch],
    ]);
  });
});
