// Schedules against the real Redis and Postgres, with second-granularity cron expressions.
import { Worker, type Job } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet, type LoadedFleet } from '../src/config/load-fleet.js';
import type { FleetInput } from '../src/config/fleet-schema.js';
import { QueueSet } from '../src/queues/queue-set.js';
import { createPool } from '../src/registry/pool.js';
import { createScheduleRepository } from '../src/registry/schedules.js';
import { nextFires } from '../src/scheduler/fire-times.js';
import { Scheduler, type SchedulerDeps } from '../src/scheduler/scheduler.js';
import { closeRedis, createRedis } from '../src/redis.js';
import type { RunningWorkers } from '../src/workers/start-workers.js';
import { asOperator, asReader, startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { REPO_ROOT, testFleetInput } from './helpers/fleet.js';
import { testLogger } from './helpers/logger.js';
import { DATABASE_URL, REDIS_URL, uniqueName } from './helpers/servers.js';
import { waitFor } from './helpers/wait.js';
import { startTestWorkers } from './helpers/workers.js';

const training = (model: string) => ({ kind: 'training' as const, model });
const input: FleetInput = testFleetInput({
  schedules: {
    'every-second': { cron: '* * * * * *', timezone: 'UTC', enqueue: training('model-b'), overlap: 'allow' },
    'skip-second': { cron: '* * * * * *', timezone: 'UTC', enqueue: training('model-b'), overlap: 'skip' },
    'ticker': { cron: '* * * * * *', timezone: 'UTC', enqueue: training('model-b'), overlap: 'allow' },
    'paused-second': { cron: '* * * * * *', timezone: 'UTC', enqueue: training('model-b'), overlap: 'allow' },
    'minutely': { cron: '* * * * *', timezone: 'UTC', enqueue: training('model-b'), overlap: 'allow' },
    'on-demand': { timezone: 'America/New_York', enqueue: training('model-b'), overlap: 'skip' },
    'repairable': { timezone: 'UTC', enqueue: training('model-b'), overlap: 'skip' },
    'buffered': { timezone: 'UTC', enqueue: training('model-b'), overlap: 'buffer-one' },
    'replacing': { timezone: 'UTC', enqueue: training('model-b'), overlap: 'cancel-previous' },
    'nightly-ny': { cron: '30 2 * * *', timezone: 'America/New_York', enqueue: training('model-b') },
    // Catch-up with mode 'all'; overlap 'allow', so the policy does not skip the second of them.
    'catch-all-capped': { cron: '* * * * *', timezone: 'UTC', enqueue: training('model-b'), overlap: 'allow', catchUp: { mode: 'all', max: 3 } },
    'catch-all-window': { cron: '* * * * *', timezone: 'UTC', enqueue: training('model-b'), overlap: 'allow', catchUp: { mode: 'all', max: 10, windowSeconds: 150 } },
    'resume-catch-up': { cron: '* * * * *', timezone: 'UTC', enqueue: training('model-b'), overlap: 'allow', catchUp: { mode: 'all', max: 2 } },
    'paused-trigger': { cron: '* * * * *', timezone: 'UTC', enqueue: training('model-b'), overlap: 'skip' },
  },
});
const all = parseFleet(input, '(scheduler test)', REPO_ROOT);
/** A fleet with only the named schedules, so each test runs just the timers it looks at. */
const only = (...names: string[]): LoadedFleet => ({
  ...all,
  schedules: Object.fromEntries(Object.entries(all.schedules).filter(([n]) => names.includes(n))),
});

let db: TestSchema;
let api: ApiHarness;
const prefix = uniqueName('sched');
const running: { close(): Promise<void> }[] = [];
let workers: RunningWorkers | undefined;

beforeAll(async () => {
  db = await createTestSchema('sched');
  api = await startApi({ fleet: all, prefix, schema: db.schema });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
  await workers?.close();
  workers = undefined;
  // Each test starts from empty queues.
  await Promise.all(api.queues.all().map((e) => e.queue.obliterate({ force: true })));
});
afterAll(async () => {
  await api.close();
  await db.drop();
});

/** A scheduler replica with its own connections, as a separate process would have. */
async function replica(fleet: LoadedFleet, extra: Partial<SchedulerDeps> = {}): Promise<Scheduler> {
  const pool = createPool(DATABASE_URL, testLogger, { schema: db.schema, max: 2 });
  const redis = createRedis(REDIS_URL, 'producer', testLogger);
  await new Promise<void>((r) => (redis.status === 'ready' ? r() : redis.once('ready', () => r())));
  const queues = new QueueSet(fleet, redis, prefix, testLogger);
  const scheduler = new Scheduler({ fleet, queues, schedules: createScheduleRepository(pool), logger: testLogger, ...extra });
  running.push({
    close: async () => {
      await scheduler.close();
      await queues.close();
      await closeRedis(redis);
      await pool.end();
    },
  });
  await scheduler.start();
  return scheduler;
}

const fires = async (schedule: string) =>
  (await db.pool.query<{ scheduled_for: Date; outcome: string; job_ids: string[]; reason: string | null; source: string }>(
    'select scheduled_for, outcome, job_ids, reason, source from schedule_fires where schedule = $1 order by scheduled_for',
    [schedule],
  )).rows;

const trainingQueue = () => api.queues.get('training-model-b')!.queue;

describe('exactly once', () => {
  it('three replicas running at once enqueue exactly one job per fire, over ten fires and more', async () => {
    await Promise.all([1, 2, 3].map(() => replica(only('every-second'))));
    const rows = await waitFor('eleven fires', async () => {
      const r = (await fires('every-second')).filter((f) => f.outcome === 'enqueued');
      return r.length >= 11 ? r : undefined;
    }, { timeoutMs: 20_000 });
    await Promise.all(running.splice(0).map((r) => r.close()));
    const jobs = (await trainingQueue().getJobs(['waiting'], 0, -1)) as Job[];
    const ours = jobs.filter((j) => j.data.trigger.by === 'every-second');
    const settled = (await fires('every-second')).filter((f) => f.outcome === 'enqueued');
    expect(settled.length).toBeGreaterThanOrEqual(rows.length);
    // One job per fire: as many jobs as fires, each fire's job carrying its own scheduled time.
    expect(ours).toHaveLength(settled.length);
    for (const f of settled) {
      expect(f.job_ids).toHaveLength(1);
      const job = ours.find((j) => j.id === f.job_ids[0])!;
      expect(job.data.trigger.scheduledFor).toBe(f.scheduled_for.toISOString());
      // The data interval runs from the previous fire to this one.
      expect(job.data.payload.datasetWindow).toEqual({
        from: new Date(f.scheduled_for.getTime() - 1000).toISOString(),
        to: f.scheduled_for.toISOString(),
      });
    }
    // Consecutive fires, one second apart: none was lost or doubled.
    const times = settled.map((f) => f.scheduled_for.getTime());
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(1000);
  });
});

describe('overlap', () => {
  it('skip: no new run while the previous one is active, and each skip is recorded', async () => {
    workers = await startTestWorkers(all, prefix, db.pool, ['host-b']);
    const fleet = only('skip-second');
    // The run enqueued by the first fire trains for a long while.
    fleet.schedules['skip-second'] = {
      ...fleet.schedules['skip-second']!,
      enqueue: { kind: 'training', model: 'model-b', params: { epochs: 20, epoch_ms: 500 } },
    };
    await replica(fleet);
    const rows = await waitFor('three skips', async () => {
      const r = await fires('skip-second');
      return r.filter((f) => f.outcome === 'skipped').length >= 3 ? r : undefined;
    }, { timeoutMs: 20_000 });
    const enqueued = rows.filter((f) => f.outcome === 'enqueued');
    expect(enqueued).toHaveLength(1);
    const first = await trainingQueue().getJob(enqueued[0]!.job_ids[0]!);
    expect(['active', 'waiting']).toContain(await first!.getState());
    for (const skip of rows.filter((f) => f.outcome === 'skipped')) {
      expect(skip.reason).toContain(`a previous run is still waiting or active: ${enqueued[0]!.job_ids[0]}`);
    }
    await api.app.inject({ method: 'POST', url: `/api/jobs/${enqueued[0]!.job_ids[0]}/cancel`, headers: asOperator });
  });
});

describe('catch-up', () => {
  it('after a downtime enqueues exactly the most recent missed fire, records the rest, and never twice', async () => {
    const repo = createScheduleRepository(db.pool);
    await repo.ensure('minutely');
    await db.pool.query("update schedule_state set known_since = now() - interval '5 minutes 30 seconds' where schedule = 'minutely'");
    await replica(only('minutely'));
    await replica(only('minutely')); // a second start, right after
    const rows = await fires('minutely');
    const caught = rows.filter((f) => f.outcome === 'enqueued');
    expect(caught).toHaveLength(1);
    expect(caught[0]!.source).toBe('catch-up');
    const missed = rows.filter((f) => f.outcome === 'missed');
    expect(missed.length).toBeGreaterThanOrEqual(4);
    expect(missed.every((m) => m.scheduled_for < caught[0]!.scheduled_for)).toBe(true);
    const lastMinute = Math.floor(Date.now() / 60_000) * 60_000;
    expect(caught[0]!.scheduled_for.getTime()).toBeGreaterThanOrEqual(lastMinute - 60_000);
  });
});

describe('catch-up with mode all', () => {
  it('enqueues the most recent missed fires up to max, records every other one as missed, and never twice', async () => {
    const repo = createScheduleRepository(db.pool);
    await repo.ensure('catch-all-capped');
    // Five or six minutely fires were missed, depending on where in the minute this runs.
    await db.pool.query("update schedule_state set known_since = now() - interval '5 minutes 30 seconds' where schedule = 'catch-all-capped'");
    await replica(only('catch-all-capped'));
    await replica(only('catch-all-capped')); // a second start, right after
    const rows = (await fires('catch-all-capped')).filter((f) => f.source === 'catch-up');
    const caught = rows.filter((f) => f.outcome === 'enqueued');
    const missed = rows.filter((f) => f.outcome === 'missed');
    expect(caught).toHaveLength(3);
    expect(missed.length).toBeGreaterThanOrEqual(2);
    expect(caught.length + missed.length).toBe(rows.length);
    expect(rows.length).toBeGreaterThanOrEqual(5);
    // The caught-up ones are the most recent, consecutive minutes; the missed ones all precede them.
    const times = caught.map((f) => f.scheduled_for.getTime());
    expect(times[1]! - times[0]!).toBe(60_000);
    expect(times[2]! - times[1]!).toBe(60_000);
    expect(times[2]!).toBeGreaterThanOrEqual(Math.floor(Date.now() / 60_000) * 60_000 - 60_000);
    expect(missed.every((m) => m.scheduled_for.getTime() < times[0]!)).toBe(true);
    expect(missed.every((m) => m.reason?.includes('beyond the catch-up window or its cap'))).toBe(true);
    // One job each, under the id derived from its scheduled time.
    for (const f of caught) {
      expect(f.job_ids).toEqual([`training-model-b.sched-catch-all-capped-${f.scheduled_for.getTime()}`]);
      const job = await trainingQueue().getJob(f.job_ids[0]!);
      expect(job?.data.trigger.scheduledFor).toBe(f.scheduled_for.toISOString());
    }
    const ours = (await trainingQueue().getJobs(['waiting'], 0, -1)).filter((j) => j.data.trigger.by === 'catch-all-capped');
    expect(ours.filter((j) => j.id?.includes('sched-catch-all-capped-'))).toHaveLength(
      (await fires('catch-all-capped')).filter((f) => f.outcome === 'enqueued').length,
    );
  });

  it('enqueues only the missed fires within the catch-up window, and records the older ones as missed', async () => {
    const repo = createScheduleRepository(db.pool);
    await repo.ensure('catch-all-window');
    await db.pool.query("update schedule_state set known_since = now() - interval '5 minutes 30 seconds' where schedule = 'catch-all-window'");
    const before = Date.now();
    await replica(only('catch-all-window'));
    const after = Date.now();
    const rows = (await fires('catch-all-window')).filter((f) => f.source === 'catch-up');
    const caught = rows.filter((f) => f.outcome === 'enqueued');
    const missed = rows.filter((f) => f.outcome === 'missed');
    // A 150 s window holds two or three minutely fires, fewer than max (10): all of them run.
    expect(caught.length).toBeGreaterThanOrEqual(2);
    expect(caught.length).toBeLessThanOrEqual(3);
    expect(caught.every((f) => f.scheduled_for.getTime() >= before - 150_000)).toBe(true);
    expect(missed.length).toBeGreaterThanOrEqual(2);
    expect(missed.every((f) => f.scheduled_for.getTime() < after - 150_000)).toBe(true);
    expect(caught.length + missed.length).toBe(rows.length);
  });
});

describe('claims whose lease ran out', () => {
  const repo = () => createScheduleRepository(db.pool);
  /** A claim made by a replica that then died, before enqueueing anything. */
  const abandonedClaim = async (schedule: string, scheduledFor: Date, manual = false) =>
    (await repo().claim({ schedule, scheduledFor, manual, source: manual ? 'trigger' : 'cron', actor: 'scheduler', interval: null, claimedBy: 'dead-replica', leaseMs: 300 }))!;
  const settled = (id: number) =>
    waitFor(`fire ${id} to be settled`, async () => (await repo().history('repairable', 100)).find((f) => f.id === id && f.outcome !== 'claimed'), { timeoutMs: 5000 });

  it('a live replica takes the claim over within its repair period, enqueues it under the derived id, and is named in the history', async () => {
    await repo().ensure('repairable');
    const at = new Date(Math.floor(Date.now() / 1000) * 1000 - 5000);
    const claimed = await abandonedClaim('repairable', at, true);
    expect(claimed).toMatchObject({ outcome: 'claimed', claimedBy: 'dead-replica', repairedBy: null });
    await replica(only('repairable'), { replica: 'live-replica', repairEveryMs: 100 });
    const fire = await settled(claimed.id);
    expect(fire).toMatchObject({ outcome: 'enqueued', claimedBy: 'dead-replica', repairedBy: 'live-replica', jobIds: [`training-model-b.sched-repairable-${at.getTime()}-m`] });
    expect(await trainingQueue().getJob(fire.jobIds[0]!)).toBeDefined();
    const history = (await api.app.inject({ method: 'GET', url: '/api/schedules/repairable', headers: asReader })).json().history;
    expect(history.find((f: { id: number }) => f.id === claimed.id)).toMatchObject({ claimedBy: 'dead-replica', repairedBy: 'live-replica' });
  });

  it('a repair of a fire its claimer had enqueued before dying records it enqueued, though overlap would now skip it', async () => {
    await repo().ensure('repairable');
    // An earlier run is waiting, so the overlap policy (skip) would skip a fresh decision.
    const earlier = await api.app.inject({ method: 'POST', url: '/api/schedules/repairable/trigger', headers: asOperator, payload: {} });
    expect(earlier.statusCode).toBe(201);
    const at = new Date(Math.floor(Date.now() / 1000) * 1000 - 3000);
    const claimed = await abandonedClaim('repairable', at, true);
    // The dead claimer had decided to run and got as far as the enqueue.
    const id = `training-model-b.sched-repairable-${at.getTime()}-m`;
    await trainingQueue().add('training', { kind: 'training', payload: { model: 'model-b', params: {} }, trigger: { reason: 'schedule', by: 'repairable', at: at.toISOString() } }, { jobId: id });
    await replica(only('repairable'), { replica: 'live-replica', repairEveryMs: 100 });
    expect(await settled(claimed.id)).toMatchObject({ outcome: 'enqueued', jobIds: [id], repairedBy: 'live-replica' });
    expect((await trainingQueue().getJobs(['waiting'], 0, -1)).filter((j) => j.id === id)).toHaveLength(1);
  });

  it('a claimer that finishes after its claim was taken over changes nothing the repairer recorded', async () => {
    await repo().ensure('repairable');
    const fire = await abandonedClaim('repairable', new Date(Math.floor(Date.now() / 1000) * 1000 - 1000), true);
    await waitFor('the lease to run out', async () => (await repo().takeOverExpired(['repairable'], 'live-replica', 60_000)).some((f) => f.id === fire.id), { timeoutMs: 5000 });
    expect(await repo().settle(fire.id, 'dead-replica', 'failed', [], 'too late')).toBe(false);
    expect(await repo().settle(fire.id, 'live-replica', 'skipped', [], 'the repairer decided')).toBe(true);
    expect(await settled(fire.id)).toMatchObject({ outcome: 'skipped', reason: 'the repairer decided', repairedBy: 'live-replica' });
  });
});

describe('pause, resume and trigger', () => {
  it('a paused schedule does not fire, and on resume does not replay what it missed', async () => {
    const pause = await api.app.inject({ method: 'POST', url: '/api/schedules/paused-second/pause', headers: asOperator, payload: { reason: 'GPU maintenance' } });
    expect(pause.json()).toMatchObject({ paused: { by: 'api (operator)', reason: 'GPU maintenance' } });
    const again = await api.app.inject({ method: 'POST', url: '/api/schedules/paused-second/pause', headers: asOperator, payload: { reason: 'another' } });
    expect(again.statusCode).toBe(200);
    expect(again.json().paused.reason).toBe('GPU maintenance');

    await replica(only('paused-second', 'ticker'));
    // While the ticker fires three times, the paused schedule fires none.
    await waitFor('three ticks', async () => (await fires('ticker')).filter((f) => f.outcome === 'enqueued').length >= 3, { timeoutMs: 10_000 });
    expect(await fires('paused-second')).toEqual([]);
    const listed = (await api.app.inject({ method: 'GET', url: '/api/schedules', headers: asReader })).json().schedules;
    expect(listed.find((s: { name: string }) => s.name === 'paused-second')).toMatchObject({ paused: { reason: 'GPU maintenance' }, nextFires: [] });

    const resumed = await api.app.inject({ method: 'POST', url: '/api/schedules/paused-second/resume', headers: asOperator, payload: {} });
    expect(resumed.json()).toMatchObject({ wasPaused: true, caughtUp: [] });
    const rows = await waitFor('a fire after resuming', async () => {
      const r = await fires('paused-second');
      return r.length > 0 ? r : undefined;
    }, { timeoutMs: 10_000 });
    const resumedAt = Date.parse((await createScheduleRepository(db.pool).state('paused-second'))!.resumedAt!);
    expect(rows.every((f) => f.scheduled_for.getTime() >= resumedAt - 1000 && f.source === 'cron')).toBe(true);
  });

  it('on resume with {catchUp: true} replays the fires missed while paused, by its catch-up policy', async () => {
    const pause = await api.app.inject({ method: 'POST', url: '/api/schedules/resume-catch-up/pause', headers: asOperator, payload: { reason: 'maintenance' } });
    expect(pause.statusCode).toBe(200);
    // Paused five and a half minutes ago: five or six minutely fires were missed while paused.
    await db.pool.query("update schedule_state set paused_at = now() - interval '5 minutes 30 seconds' where schedule = 'resume-catch-up'");
    const pausedAt = Date.parse((await createScheduleRepository(db.pool).state('resume-catch-up'))!.pausedAt!);
    const resumed = await api.app.inject({ method: 'POST', url: '/api/schedules/resume-catch-up/resume', headers: asOperator, payload: { catchUp: true } });
    const resumedAt = Date.now();
    expect(resumed.statusCode).toBe(200);
    const body = resumed.json();
    expect(body).toMatchObject({ wasPaused: true, paused: null });
    // The policy is mode 'all' with max 2: the two most recent missed fires run.
    expect(body.caughtUp).toHaveLength(2);
    const rows = await fires('resume-catch-up');
    const replayed = rows.filter((f) => f.outcome === 'enqueued');
    expect(replayed.map((f) => f.source)).toEqual(['resume', 'resume']);
    expect(replayed.flatMap((f) => f.job_ids).sort()).toEqual([...body.caughtUp].sort());
    expect(replayed[1]!.scheduled_for.getTime() - replayed[0]!.scheduled_for.getTime()).toBe(60_000);
    for (const id of body.caughtUp as string[]) expect(await trainingQueue().getJob(id)).toBeDefined();
    // Only fires from the pause on; the older ones missed while paused are recorded as missed.
    expect(rows.every((f) => f.scheduled_for.getTime() > pausedAt && f.scheduled_for.getTime() <= resumedAt)).toBe(true);
    const missed = rows.filter((f) => f.outcome === 'missed');
    expect(missed.length).toBeGreaterThanOrEqual(3);
    expect(missed.every((m) => m.scheduled_for < replayed[0]!.scheduled_for)).toBe(true);
  });

  it('a trigger runs a paused schedule, which stays paused', async () => {
    const pause = await api.app.inject({ method: 'POST', url: '/api/schedules/paused-trigger/pause', headers: asOperator, payload: { reason: 'holiday' } });
    expect(pause.statusCode).toBe(200);
    const triggered = await api.app.inject({ method: 'POST', url: '/api/schedules/paused-trigger/trigger', headers: asOperator, payload: {} });
    expect(triggered.statusCode).toBe(201);
    expect(triggered.json().jobIds).toHaveLength(1);
    const job = await trainingQueue().getJob(triggered.json().jobIds[0]);
    expect(job!.data.trigger).toMatchObject({ reason: 'schedule', by: 'paused-trigger (triggered by api (operator))' });
    const shown = (await api.app.inject({ method: 'GET', url: '/api/schedules/paused-trigger', headers: asReader })).json();
    expect(shown.paused).toMatchObject({ reason: 'holiday' });
    expect(shown.history).toHaveLength(1);
    expect(shown.history[0]).toMatchObject({ outcome: 'enqueued', source: 'trigger', jobIds: triggered.json().jobIds });
  });

  it('triggers an on-demand schedule, obeys its overlap policy unless forced, and names unknown schedules', async () => {
    const first = await api.app.inject({ method: 'POST', url: '/api/schedules/on-demand/trigger', headers: asOperator, payload: {} });
    expect(first.statusCode).toBe(201);
    expect(first.json().jobIds).toHaveLength(1);
    const job = await trainingQueue().getJob(first.json().jobIds[0]);
    expect(job!.data.trigger).toMatchObject({ reason: 'schedule', by: 'on-demand (triggered by api (operator))' });
    const second = await api.app.inject({ method: 'POST', url: '/api/schedules/on-demand/trigger', headers: asOperator, payload: {} });
    expect(second.statusCode).toBe(409);
    expect(second.json().message).toMatch(/previous run is still waiting or active.*force/);
    const forced = await api.app.inject({ method: 'POST', url: '/api/schedules/on-demand/trigger', headers: asOperator, payload: { force: true } });
    expect(forced.statusCode).toBe(201);
    const history = (await api.app.inject({ method: 'GET', url: '/api/schedules/on-demand', headers: asReader })).json();
    expect(history.history.map((f: { outcome: string }) => f.outcome)).toEqual(['enqueued', 'skipped', 'enqueued']);
    expect(history.nextFires).toEqual([]);

    const unknown = await api.app.inject({ method: 'POST', url: '/api/schedules/nope/trigger', headers: asOperator, payload: {} });
    expect(unknown.statusCode).toBe(404);
    expect((await api.app.inject({ method: 'POST', url: '/api/schedules/on-demand/trigger', headers: asReader, payload: {} })).statusCode).toBe(403);
  });

  it('buffer-one lets one run wait behind the active one and skips a second; cancel-previous cancels the waiting run first', async () => {
    const trigger = (name: string) => api.app.inject({ method: 'POST', url: `/api/schedules/${name}/trigger`, headers: asOperator, payload: {} });
    const first = await trigger('buffered');
    expect(first.statusCode).toBe(201);
    // Take the first run as a worker would, so it is active under a lock.
    const connection = createRedis(REDIS_URL, 'worker', testLogger);
    const consumer = new Worker('training-model-b', null, { connection, prefix, autorun: false });
    running.push({ close: async () => { await consumer.close(); await closeRedis(connection); } });
    const taken = (await consumer.getNextJob('overlap-test', { block: false })) as Job | undefined;
    expect(taken?.id).toBe(first.json().jobIds[0]);
    const second = await trigger('buffered');
    expect(second.statusCode).toBe(201);
    const third = await trigger('buffered');
    expect(third.statusCode).toBe(409);
    expect(third.json().message).toMatch(/one run is already buffered behind the active one/);
    expect(await trainingQueue().getJobCounts('active', 'waiting')).toEqual({ active: 1, waiting: 1 });

    const before = await trigger('replacing');
    expect(before.statusCode).toBe(201);
    const after = await trigger('replacing');
    expect(after.statusCode).toBe(201);
    // The waiting earlier run was cancelled before the new one was enqueued.
    expect(await trainingQueue().getJob(before.json().jobIds[0])).toBeUndefined();
    expect(await trainingQueue().getJob(after.json().jobIds[0])).toBeDefined();
    const history = (await api.app.inject({ method: 'GET', url: '/api/schedules/replacing', headers: asReader })).json().history;
    expect(history.map((f: { outcome: string }) => f.outcome)).toEqual(['enqueued', 'enqueued']);
  });

  it('lists every schedule with its next five fire times', async () => {
    const listed = (await api.app.inject({ method: 'GET', url: '/api/schedules', headers: asReader })).json().schedules as { name: string; nextFires: string[]; timezone: string }[];
    const nightly = listed.find((s) => s.name === 'nightly-ny')!;
    expect(nightly.nextFires).toHaveLength(5);
    expect(nightly.timezone).toBe('America/New_York');
  });
});

describe('fire times across daylight saving time (America/New_York)', () => {
  const s = { cron: '30 2 * * *', timezone: 'America/New_York' };
  it('a time in the hour skipped in spring fires at the first valid time after it', () => {
    expect(nextFires(s, 3, new Date('2026-03-07T12:00:00Z')).map((d) => d.toISOString())).toEqual([
      '2026-03-08T07:00:00.000Z', // 03:00 EDT: 02:30 does not exist that night
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
      '2026-03-10T06:30:00.000Z',
    ]);
  });
  it('a time in the hour repeated in autumn fires once', () => {
    expect(nextFires({ ...s, cron: '30 1 * * *' }, 3, new Date('2026-10-31T12:00:00Z')).map((d) => d.toISOString())).toEqual([
      '2026-11-01T05:30:00.000Z', // 01:30 EDT, the first of the two 01:30s; not again at 01:30 EST
      '2026-11-02T06:30:00.000Z', // 01:30 EST
      '2026-11-03T06:30:00.000Z',
    ]);
  });
});
