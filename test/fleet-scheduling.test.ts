// Fleet scheduling with real host workers against the real Redis: one host of a pool holds GPUs
// for a starved job (the one expected to free enough soonest) while the others keep serving; a
// holder killed with kill -9 loses the reservation to a live host; backfill lets a job run ahead
// of the reserved one only when it is expected to end in time, and hands back one that overruns.
import path from 'node:path';
import type { Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { enqueue } from '../src/queues/enqueue.js';
import { readReservations } from '../src/queues/reservations.js';
import { durationsKey } from '../src/queues/redis-names.js';
import type { WorkerStatus } from '../src/queues/worker-status.js';
import type { DispatchDecision, DispatchSnapshot } from '../src/workers/policy/index.js';
import { asReader } from './helpers/api.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { waitFor } from './helpers/wait.js';
import { fleetFileHarness } from './helpers/fleet-file.js';
import { startTestWorkers } from './helpers/workers.js';

const gpus = (n: number) => Array.from({ length: n }, (_, index) => ({ index, name: `Fake GPU ${index}`, memoryMiB: 8192 }));
const trainer = (timeoutSeconds: number) => ({ command: ['node', 'examples/trainer.mjs'], cwd: REPO_ROOT, timeoutSeconds, attempts: 1 });
const model = (sandbox: string, pool: string, gpusPerRun: number, timeoutSeconds = 120) => ({
  pool,
  gpusPerRun,
  train: trainer(timeoutSeconds),
  validate: { command: ['node', 'examples/validator.mjs'], cwd: REPO_ROOT, timeoutSeconds: 60 },
  checkpointDir: path.join(sandbox, 'checkpoints', `${pool}-${gpusPerRun}-${timeoutSeconds}`),
});
const example = (name: string) => ({ command: ['node', `examples/${name}.mjs`], cwd: REPO_ROOT, timeoutSeconds: 30 });

// h1 and h2 (2 GPUs each) form pool "pair"; "quick" runs only on h1, "slow" only on h2, so each
// host's running job, and so its expected start for the big job, is known. "solo" is one 4-GPU
// host for the backfill tests.
const h = fleetFileHarness(
  'fleetsched',
  (sandbox) => ({
  hosts: { h1: { gpus: gpus(2), cpuSlots: 1 }, h2: { gpus: gpus(2), cpuSlots: 1 }, solo: { gpus: gpus(4), cpuSlots: 1 } },
  pools: { pair: ['h1', 'h2'], one: ['h1'], two: ['h2'], solo: ['solo'] },
  models: {
    big: model(sandbox, 'pair', 2),
    mid: model(sandbox, 'pair', 1),
    quick: model(sandbox, 'one', 1, 20),
    slow: model(sandbox, 'two', 1, 120),
    huge: model(sandbox, 'solo', 4),
    short: model(sandbox, 'solo', 1),
    long: model(sandbox, 'solo', 1),
    hold: model(sandbox, 'solo', 1),
  },
  backtest: { pool: 'pair', ...example('backtester') },
  dataSync: { pool: 'pair', ...example('data-syncer') },
  }),
  async ({ api, prefix }) => {
    await Promise.all(api.queues.all().map((e) => e.queue.obliterate({ force: true })));
    const stale = await api.redis.keys(`${prefix}:reservation:*`);
    const learned = await api.redis.keys(`${prefix}:durations:*`);
    if (stale.length + learned.length) await api.redis.del(...stale, ...learned);
  },
);

const add = (model: string, params: Record<string, unknown>) =>
  enqueue({ fleet: h.fleet, queues: h.api.queues }, 'training', { model, params }, { reason: 'api', by: 'test', at: new Date().toISOString() });
const stateOf = async (queue: string, id: string) => (await h.api.queues.get(queue)!.queue.getJob(id))!.getState();
const job = (queue: string, id: string) => h.api.queues.get(queue)!.queue.getJob(id) as Promise<Job>;
const finished = (queue: string, id: string) =>
  waitFor(`${queue} job ${id} to finish`, async () => ((await stateOf(queue, id)) === 'completed' ? job(queue, id) : undefined), { timeoutMs: 60_000 });
const active = (queue: string, id: string) => waitFor(`${queue} job ${id} to start`, async () => (await stateOf(queue, id)) === 'active', { timeoutMs: 30_000 });
const listed = async (): Promise<WorkerStatus[]> => (await h.api.app.inject({ method: 'GET', url: '/api/workers', headers: asReader })).json().workers;
const waitingFor = async (id: string) => (await h.api.app.inject({ method: 'GET', url: `/api/jobs/${id}`, headers: asReader })).json().waitingFor as string;


describe('pool-wide reservations', () => {
  it('one host holds (the one expected to start the job soonest), the other keeps serving, and a live host takes over when the holder is killed', async () => {
    const h1 = h.workerProcess('h1', { CAELUM_KILL_GRACE_MS: '500', CAELUM_STARVATION_GUARD_MS: '0' });
    h.workers = await startTestWorkers(h.fleet, h.prefix, h.api.pool, ['h2'], { starvationGuardMs: 0, dispatchPolicy: 'pool' });
    // h1 runs a job expected to end in ~10 s (its progress rate); h2 one with no progress for a
    // minute, so the best it can say is its 120 s timeout.
    const quick = await add('quick', { epochs: 100, epoch_ms: 100 });
    const slow = await add('slow', { epochs: 2, epoch_ms: 60_000 });
    await active('training-quick', quick.id);
    await active('training-slow', slow.id);
    await waitFor('h1 to report progress', async () => ((await job('training-quick', quick.id)).progress as { epoch?: number }).epoch);

    const big = await add('big', { epochs: 1, epoch_ms: 100 });
    // Whichever host decides first may claim it; every host bids again at least once per longest
    // block (5 s), and h1's earlier expected start takes it over.
    const holder = await waitFor('h1, and only h1, to hold GPUs for the big job', async () => {
      const stored = (await readReservations(h.api.redis, h.prefix, ['training-big'])).get('training-big');
      const holders = (await listed()).filter((w) => w.reservation);
      return stored?.host === 'h1' && holders.length === 1 && holders[0]!.host === 'h1' ? { stored, status: holders[0]! } : undefined;
    });
    expect(holder.stored).toMatchObject({ host: 'h1', jobId: big.id });
    expect(holder.status.reservation).toMatchObject({ queue: 'training-big', jobId: big.id });
    const expectedStart = Date.parse(holder.status.reservation!.expectedStartAt!);
    expect(expectedStart).toBeLessThan(Date.now() + 20_000);
    expect(await waitingFor(big.id)).toMatch(/; h1 holds its GPUs for this job, expected to start at \S+ \((in \d+ s|now)\)$/);

    // h2 does not hold: a 1-GPU job of the pool starts on its free GPU.
    const mid = await add('mid', { epochs: 1, epoch_ms: 300 });
    expect(((await finished('training-mid', mid.id)).returnvalue as { host: string }).host).toBe('h2');

    // The holder dies without a word: its lease lapses and h2, with a GPU free again, takes over.
    h1.kill('SIGKILL');
    await h1;
    const takenOver = await waitFor('h2 to take the reservation over, and say so', async () => {
      const stored = (await readReservations(h.api.redis, h.prefix, ['training-big'])).get('training-big');
      const status = (await listed()).find((w) => w.host === 'h2');
      return stored?.host === 'h2' && status?.reservation ? { stored, status } : undefined;
    });
    expect(takenOver.stored.jobId).toBe(big.id);
    expect(takenOver.status.reservation).toMatchObject({ queue: 'training-big', jobId: big.id });
    expect(await waitingFor(big.id)).toContain('h2 holds its GPUs for this job');
  });
});

describe('backfill', () => {
  /** Runs `n` jobs of `model` to completion at once, so the queue has learned durations. */
  async function learn(model: string, n: number, params: Record<string, unknown>): Promise<void> {
    const ids = await Promise.all(Array.from({ length: n }, () => add(model, params)));
    for (const { id } of ids) await finished(`training-${model}`, id);
  }

  it('starts a job expected to end before the reserved job may start, refuses one that would delay it, and learns durations as jobs complete', async () => {
    const decisions: DispatchDecision[] = [];
    h.workers = await startTestWorkers(h.fleet, h.prefix, h.api.pool, ['solo'], { starvationGuardMs: 0, dispatchPolicy: 'backfill' }, undefined, {
      onDecision: (_s: DispatchSnapshot, d: DispatchDecision) => void decisions.push(d),
    });
    await Promise.all([learn('short', 3, { epochs: 1, epoch_ms: 100 }), learn('long', 3, { epochs: 1, epoch_ms: 6_000 })]);
    expect(await h.api.redis.llen(durationsKey(h.prefix, 'training-short'))).toBe(3);
    expect(await h.api.redis.llen(durationsKey(h.prefix, 'training-long'))).toBe(3);

    // One GPU busy for ~4 s; the 4-GPU job must wait for it. Two progress reports give the rate
    // (one alone would count the trainer's start-up as training time).
    const holding = await add('hold', { epochs: 40, epoch_ms: 100 });
    await active('training-hold', holding.id);
    await waitFor('the holding job to report two epochs', async () => ((await job('training-hold', holding.id)).progress as { epoch?: number }).epoch! >= 2);
    const huge = await add('huge', { epochs: 1, epoch_ms: 100 });
    await waitFor('the host to hold for the 4-GPU job', () => decisions.some((d) => d.reservedFor === 'training-huge'));
    const long = await add('long', { epochs: 1, epoch_ms: 6_000 });
    const short = await add('short', { epochs: 1, epoch_ms: 100 });

    const [hugeDone, shortDone, longDone] = [await finished('training-huge', huge.id), await finished('training-short', short.id), await finished('training-long', long.id)];
    // The short job ran on an idle held GPU and was gone before the big one started.
    expect(shortDone.processedOn!).toBeLessThan(hugeDone.processedOn!);
    expect(shortDone.finishedOn!).toBeLessThanOrEqual(hugeDone.processedOn!);
    // The long one (learned: ~6 s, the holder ends in ~4 s) waited for it (its GPUs come back
    // when its child exits, a moment before its completion is written).
    expect(longDone.processedOn!).toBeGreaterThan(hugeDone.processedOn!);
    const refused = decisions.find((d) => d.reservedFor === 'training-huge' && d.order.some((q) => q.name === 'training-short') && !d.order.some((q) => q.name === 'training-long'));
    expect(refused?.backfill.get('training-short')).toBeGreaterThan(0);
  });

  it('hands back a backfilled job that overruns its estimate, so the reserved job waits at most the overrun allowance for it', async () => {
    const overrunMs = 1_000;
    const killGraceMs = 500;
    const deadlines: number[] = [];
    h.workers = await startTestWorkers(
      h.fleet,
      h.prefix,
      h.api.pool,
      ['solo'],
      { starvationGuardMs: 0, dispatchPolicy: 'backfill', backfillOverrunMs: overrunMs, killGraceMs },
      undefined,
      { onDecision: (_s: DispatchSnapshot, d: DispatchDecision) => void (d.backfill.has('training-short') && deadlines.push(d.backfill.get('training-short')!)) },
    );
    // "short" learns ~0.2 s runs; the job that backfills has other params and, with no history
    // of its own, is estimated from the queue's: it then runs for minutes.
    await learn('short', 3, { epochs: 1, epoch_ms: 100 });
    const holding = await add('hold', { epochs: 30, epoch_ms: 100 });
    await active('training-hold', holding.id);
    await waitFor('the holding job to report progress', async () => ((await job('training-hold', holding.id)).progress as { epoch?: number }).epoch);
    const huge = await add('huge', { epochs: 1, epoch_ms: 100 });
    await waitFor('the host to hold for the 4-GPU job', async () => (await listed())[0]?.reservation?.jobId === huge.id);
    const liar = await add('short', { epochs: 1_000, epoch_ms: 100 });
    await active('training-short', liar.id);

    const holdDone = await finished('training-hold', holding.id);
    const hugeDone = await finished('training-huge', huge.id);
    // The liar started under the deadline of the last decision that admitted it: the
    // reservation's expected start then + overrunMs. The big job starts once the holder is done
    // and, at the latest, that deadline + the kill grace (SIGTERM, then SIGKILL) + bookkeeping.
    const deadline = deadlines.at(-1)!;
    expect(deadline).toBeGreaterThan(0);
    expect(hugeDone.processedOn!).toBeLessThan(Math.max(deadline, holdDone.finishedOn!) + killGraceMs + 1_500);
    expect(hugeDone.processedOn!).toBeGreaterThanOrEqual(holdDone.processedOn!);
    // Handed back, not failed: it runs again once the big job is done, on its first attempt still.
    await waitFor('the handed-back job to run again', async () => ((await job('training-short', liar.id)).attemptsStarted >= 2 ? true : undefined));
    const back = await job('training-short', liar.id);
    expect({ failedReason: back.failedReason, attemptsMade: back.attemptsMade }).toEqual({ failedReason: undefined, attemptsMade: 0 });
    expect(back.processedOn!).toBeGreaterThan(hugeDone.processedOn!);
  });
});
