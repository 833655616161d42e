// Preemption by priority class, with real workers and trainers: an urgent training waiting behind
// a background one in a full pool takes its GPUs after the preempt wait; the background job gets
// its stop grace, writes a checkpoint, goes back to its queue without using an attempt, says why
// it waits, and later resumes where it stopped. A training never preempts one of its own class.
import path from 'node:path';
import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../src/metrics.js';
import { enqueue } from '../src/queues/enqueue.js';
import type { DispatchDecision, DispatchSnapshot } from '../src/workers/policy/index.js';
import { asReader } from './helpers/api.js';
import { fleetFileHarness } from './helpers/fleet-file.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { waitFor } from './helpers/wait.js';
import { startTestWorkers, TEST_WORKER_OPTIONS } from './helpers/workers.js';

const example = (name: string) => ({ command: ['node', `examples/${name}.mjs`], cwd: REPO_ROOT, timeoutSeconds: 120 });
const model = (sandbox: string, name: string, priorityClass: string) => ({
  pool: 'p',
  gpusPerRun: 2,
  priorityClass,
  train: { ...example('trainer'), attempts: 1, stopGraceSeconds: 10 },
  validate: example('validator'),
  checkpointDir: path.join(sandbox, 'checkpoints', name),
});
const h = fleetFileHarness(
  'preempt',
  (sandbox) => ({
    hosts: { 'gpu-p': { gpus: [0, 1].map((index) => ({ index, name: `Fake GPU ${index}`, memoryMiB: 8192 })), cpuSlots: 1 } },
    pools: { p: ['gpu-p'] },
    models: { bg: model(sandbox, 'bg', 'background'), daily: model(sandbox, 'daily', 'urgent'), peer: model(sandbox, 'peer', 'background') },
    backtest: { pool: 'p', ...example('backtester') },
    dataSync: { pool: 'p', ...example('data-syncer') },
  }),
  async ({ api }) => {
    await Promise.all(api.queues.all().map((e) => e.queue.obliterate({ force: true })));
  },
);

const PREEMPT_AFTER_MS = 1_500;
const train = (model: string, params: Record<string, unknown>) =>
  enqueue({ fleet: h.fleet, queues: h.api.queues }, 'training', { model, params }, { reason: 'api', by: 'test', at: new Date().toISOString() });
const job = async (model: string, id: string) => (await h.api.queues.get(`training-${model}`)!.queue.getJob(id)) as Job;
const state = async (model: string, id: string) => (await job(model, id)).getState();
const epochOf = async (model: string, id: string) => ((await job(model, id)).progress as { epoch?: number }).epoch ?? 0;

describe('preemption', () => {
  it('an urgent training takes the GPUs of a background one after the preempt wait; the background one checkpoints, waits saying why, and resumes', async () => {
    const metrics = createMetrics({ defaults: false });
    h.workers = await startTestWorkers(
      h.fleet,
      h.prefix,
      h.api.pool,
      ['gpu-p'],
      { starvationGuardMs: 0, preemptAfterMs: PREEMPT_AFTER_MS, killGraceMs: 200 },
      undefined,
      { dataDir: h.dataDir, metrics },
    );
    const bg = await train('bg', { epochs: 30, epoch_ms: 300 });
    await waitFor('the background training to run two epochs', async () => (await epochOf('bg', bg.id)) >= 2);
    const daily = await train('daily', { epochs: 2, epoch_ms: 100 });

    // Handed back after its grace checkpoint, not failed, no attempt used.
    await waitFor('the background training to be handed back', async () => (await state('bg', bg.id)) === 'waiting');
    const waitingFor = (await h.api.app.inject({ method: 'GET', url: `/api/jobs/${bg.id}`, headers: asReader })).json().waitingFor as string;
    expect(waitingFor).toMatch(new RegExp(`^preempted on gpu-p at \\S+ for job ${daily.id.replace(/[.]/g, '\\.')} \\(class urgent over background\\); resumes from its newest checkpoint; `));
    const grace = (await h.api.registry.trainingRuns.checkpoints(bg.id))[0]!;
    expect(grace.path).toMatch(/grace-e\d+\.pt$/);

    const dailyDone = await waitFor('the urgent training to complete', async () => ((await state('daily', daily.id)) === 'completed' ? job('daily', daily.id) : undefined), {
      timeoutMs: 30_000,
    });
    // It started within the preempt wait, plus at most one longest block (a full host learns of a
    // new job on its next pass), plus the grace (the trainer checkpoints at once), plus dispatch.
    expect(dailyDone.processedOn! - dailyDone.timestamp).toBeLessThan(PREEMPT_AFTER_MS + TEST_WORKER_OPTIONS.maxBlockMs + 3_000);
    expect(await metrics.registry.getSingleMetricAsString('caelum_preemptions_total')).toContain(
      'caelum_preemptions_total{pool="p",victim_class="background",for_class="urgent"} 1',
    );

    const bgDone = await waitFor('the background training to resume and complete', async () => ((await state('bg', bg.id)) === 'completed' ? job('bg', bg.id) : undefined), {
      timeoutMs: 30_000,
    });
    // BullMQ counts the completion as the one attempt made: the hand-back used none (attempts: 1).
    expect(bgDone.attemptsMade).toBe(1);
    expect((bgDone.returnvalue as { result: { firstEpoch: number } }).result.firstEpoch).toBe(grace.epoch! + 1);
    const log = (await h.api.queues.get('training-bg')!.queue.getJobLogs(bg.id)).logs.join('\n');
    expect(log).toContain(`preempted on gpu-p`);
    expect(log).toMatch(/attempt 2 resumes from .*grace-e\d+\.pt \(epoch \d+\)/);
  });

  it('never preempts a training of the same class, however long it waits', async () => {
    const decisions: { snapshot: DispatchSnapshot; decision: DispatchDecision }[] = [];
    h.workers = await startTestWorkers(h.fleet, h.prefix, h.api.pool, ['gpu-p'], { starvationGuardMs: 0, preemptAfterMs: 200 }, undefined, {
      dataDir: h.dataDir,
      onDecision: (snapshot, decision) => void decisions.push({ snapshot, decision }),
    });
    const running = await train('bg', { epochs: 30, epoch_ms: 200 });
    await waitFor('the first training to run', async () => (await epochOf('bg', running.id)) >= 1);
    const peer = await train('peer', { epochs: 1, epoch_ms: 100 });
    // Decisions well past the preempt wait, holding for the peer: none preempts.
    await waitFor('decisions past the preempt wait', () =>
      decisions.some(({ snapshot, decision }) => {
        const head = snapshot.queues.find((q) => q.name === 'training-peer');
        return decision.reservedFor === 'training-peer' && head?.headAt !== undefined && snapshot.now - head.headAt > 1_000;
      }),
    );
    expect(decisions.flatMap(({ decision }) => decision.preempt)).toEqual([]);
    expect(await state('bg', running.id)).toBe('active');
    expect(await state('peer', peer.id)).toBe('waiting');
  });
});
