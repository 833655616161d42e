// Data syncs under the fenced lock, end to end: the API, real workers, the example syncer.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FencedLock } from '../src/locks/fenced-lock.js';
import { syncLockKey } from '../src/queues/redis-names.js';
import { parseFleet, type LoadedFleet } from '../src/config/load-fleet.js';
import type { RunningWorkers } from '../src/workers/start-workers.js';
import { asOperator, asReader, startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { REDIS_URL, uniqueName } from './helpers/servers.js';
import { pidAlive, waitFor } from './helpers/wait.js';
import { childGroupOf, startTestWorkers } from './helpers/workers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-sync-'));
/** A model that trains on fresh data of `symbols`, in a folder of its own. */
const retrained = (name: string, symbols: string[]) => ({
  pool: 'alpha',
  train: { command: ['node', 'examples/trainer.mjs', '--epochs', '1', '--epoch-ms', '50'], timeoutSeconds: 60, attempts: 1 },
  validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 },
  checkpointDir: path.join(dir, name),
  symbols,
  freshData: { timeframe: '1d', maxAgeHours: 1 },
});

const fleetWith = (syncDelayMs: number, syncer = 'examples/data-syncer.mjs', syncerArgs: string[] = []): LoadedFleet =>
  parseFleet(
    {
      hosts: { 'host-a': { gpus: [{ index: 0, name: 'Fake GPU', memoryMiB: 8192 }], cpuSlots: 3 } },
      pools: { alpha: ['host-a'] },
      models: {
        fresh: retrained('fresh', ['AAA', 'BBB']),
        // Symbols of their own, stale until their tests sync them.
        patchy: retrained('patchy', ['GOOD', 'BAD']),
        waiting: retrained('waiting', ['HELD']),
      },
      backtest: { pool: 'alpha', command: ['node', 'examples/backtester.mjs'], timeoutSeconds: 60 },
      dataSync: {
        pool: 'alpha',
        command: ['node', syncer, '--rows', '20', '--delay-ms', String(syncDelayMs), ...syncerArgs],
        timeoutSeconds: 60,
        attempts: 1,
        lockTtlSeconds: 2,
      },
    },
    '(data-sync test)',
    REPO_ROOT,
  );
const slow = fleetWith(10_000);
const fast = fleetWith(50);
const failingBad = fleetWith(50, 'test/fixtures/failing-syncer.mjs', ['--fail', 'BAD']);

let db: TestSchema;
let api: ApiHarness;
let workers: RunningWorkers | undefined;
const prefix = uniqueName('sync');

beforeAll(async () => {
  db = await createTestSchema('sync');
  api = await startApi({ fleet: slow, prefix, schema: db.schema });
});
afterEach(async () => {
  await workers?.close();
  workers = undefined;
});
afterAll(async () => {
  await api.close();
  await db.drop();
});

const post = (kind: string, body: object) => api.app.inject({ method: 'POST', url: `/api/jobs/${kind}`, headers: asOperator, payload: body });
const get = (url: string) => api.app.inject({ method: 'GET', url, headers: asReader });
const job = (id: string) => api.queues.get(id.slice(0, id.indexOf('.')))!.queue.getJob(id) as Promise<Job>;
const lockWaits = async (h: ApiHarness) => (await h.metrics.lockWaits.get()).values.reduce((n, v) => n + v.value, 0);
const finished = (id: string, timeoutMs = 30_000) => waitFor(`job ${id}`, async () => ((await job(id))?.finishedOn ? job(id) : undefined), { timeoutMs });

describe('no pile-ups', () => {
  it('deduplicates a second request for a key whose sync is waiting', async () => {
    const [a, b] = await Promise.all([post('data-sync', { symbol: 'DUP', timeframe: '1h' }), post('data-sync', { symbol: 'DUP', timeframe: '1h' })]);
    const statuses = [a.statusCode, b.statusCode].sort();
    expect(statuses).toEqual([200, 201]);
    expect(a.json().id).toBe(b.json().id);
    expect([a.json().deduplicated, b.json().deduplicated].filter(Boolean)).toEqual([true]);
    expect(await api.queues.get('data-sync')!.queue.getWaitingCount()).toBe(1);
    await api.queues.get('data-sync')!.queue.obliterate({ force: true });
  });

  it('skips a request for a key being synced now, naming the holder; the lock (2 s TTL) lives through the 10 s sync', async () => {
    const updates = new Redis(REDIS_URL);
    const events: Record<string, unknown>[] = [];
    updates.on('message', (_c, m: string) => events.push(JSON.parse(m)));
    await updates.subscribe(`${prefix}:data_updates`);
    try {
      workers = await startTestWorkers(slow, prefix, db.pool, ['host-a']);
      const first = (await post('data-sync', { symbol: 'LONG', timeframe: '1d' })).json();
      const syncing = await waitFor('the key to show as syncing', async () => {
        const key = (await get('/api/data-sync')).json().keys.find((k: { symbol: string }) => k.symbol === 'LONG');
        return key?.state === 'syncing' ? key : undefined;
      });
      expect(syncing.holder.jobId).toBe(first.id);
      const second = await post('data-sync', { symbol: 'LONG', timeframe: '1d' });
      expect(second.statusCode).toBe(201);
      const skipped = await finished(second.json().id);
      expect(skipped.returnvalue).toMatchObject({ skipped: true, holderJobId: first.id });
      const view = (await get(`/api/jobs/${second.json().id}`)).json();
      expect(view.result.reason).toBe(`LONG 1d is being synced by ${first.id}`);

      const done = await finished(first.id, 20_000);
      expect(await done.getState()).toBe('completed');
      expect(done.returnvalue).toMatchObject({ skipped: false, rows: 20, fence: syncing.holder.fence });
      const key = (await get('/api/data-sync')).json().keys.find((k: { symbol: string }) => k.symbol === 'LONG');
      expect(key).toMatchObject({ state: 'idle', fence: syncing.holder.fence, holder: null, lastSync: { jobId: first.id, rows: 20 } });
      await waitFor('the data_updates event', () => events.find((e) => e.jobId === first.id));
      expect(events.find((e) => e.jobId === first.id)).toMatchObject({ symbol: 'LONG', timeframe: '1d', rows: 20 });
    } finally {
      updates.disconnect();
    }
  });

  it('ends the sync child when its lock is lost, and fails the job saying so', async () => {
    workers = await startTestWorkers(slow, prefix, db.pool, ['host-a']);
    const { id } = (await post('data-sync', { symbol: 'LOST', timeframe: '1d' })).json();
    const pgid = await waitFor('the syncer to start', () => childGroupOf(api.redis, prefix, 'host-a', id));
    await api.redis.del(`${prefix}:lock:data-sync:LOST:1d`);
    const failed = await finished(id, 10_000);
    expect(await failed.getState()).toBe('failed');
    expect(failed.failedReason).toMatch(/^lock data-sync:LOST:1d lost: renewal failed/);
    expect(pidAlive(pgid)).toBe(false);
    expect((await get('/api/data-sync')).json().keys.find((k: { symbol: string }) => k.symbol === 'LOST')).toBeUndefined();
  });
});

describe('fresh data for retrains', () => {
  it('syncs stale symbols first, as children of the training job, and records them in the lineage', async () => {
    const freshApi = await startApi({ fleet: fast, prefix, schema: db.schema, shared: true });
    try {
      workers = await startTestWorkers(fast, prefix, db.pool, ['host-a']);
      const res = await freshApi.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asOperator, payload: { model: 'fresh' } });
      expect(res.statusCode).toBe(201);
      const created = res.json();
      expect(created.state).toBe('waiting-children');
      expect(created.waitsFor).toHaveLength(2);
      const training = await finished(created.id);
      const syncs = await Promise.all(created.waitsFor.map((id: string) => job(id)));
      for (const s of syncs) expect(s.finishedOn).toBeLessThanOrEqual(training.processedOn!);
      const { registered } = training.returnvalue as { registered: { id: number }[] };
      const checkpoint = (await get(`/api/checkpoints/${registered[0]!.id}`)).json().checkpoint;
      expect(checkpoint.lineage.dataSyncs.map((d: { symbol: string }) => d.symbol)).toEqual(['AAA', 'BBB']);
      expect(checkpoint.lineage.syncedFirst).toHaveLength(2);

      // Now the data is fresh: the next retrain starts at once.
      const again = (await freshApi.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asOperator, payload: { model: 'fresh' } })).json();
      expect(again.state).toBe('waiting');
    } finally {
      await freshApi.close();
    }
  });

  it('does not let a sync that fails for good hold the retrain back: it trains, and the lineage lists the failure', async () => {
    const patchyApi = await startApi({ fleet: failingBad, prefix, schema: db.schema, shared: true });
    try {
      workers = await startTestWorkers(failingBad, prefix, db.pool, ['host-a']);
      const created = (await patchyApi.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asOperator, payload: { model: 'patchy' } })).json();
      expect(created.state).toBe('waiting-children');
      const badId = created.waitsFor.find((id: string) => id.endsWith('-BAD'));
      const goodId = created.waitsFor.find((id: string) => id.endsWith('-GOOD'));
      expect([badId, goodId]).toEqual([expect.any(String), expect.any(String)]);

      const training = await finished(created.id);
      expect(await training.getState()).toBe('completed');
      const bad = await job(badId);
      expect(await bad.getState()).toBe('failed');
      expect(bad.attemptsMade).toBe(1);
      expect(bad.finishedOn).toBeLessThanOrEqual(training.processedOn!);

      const { registered } = training.returnvalue as { registered: { id: number }[] };
      const { lineage } = (await get(`/api/checkpoints/${registered[0]!.id}`)).json().checkpoint;
      expect(lineage.syncsFailed).toEqual([{ job: badId, reason: bad.failedReason }]);
      expect(bad.failedReason).toBeTruthy();
      expect(lineage.syncedFirst.map((s: { job: string }) => s.job)).toEqual([goodId]);
      expect(lineage.dataSyncs.map((d: { symbol: string }) => d.symbol)).toEqual(['GOOD']);
    } finally {
      await patchyApi.close();
    }
  });

  it('makes a sync the retrain waits for wait for the lock another holder has, instead of skipping', async () => {
    const other = new FencedLock(api.redis, api.registry.marketData, prefix);
    const held = await other.tryAcquire(syncLockKey('HELD', '1d'), { ttlMs: 2000, maxHoldMs: 60_000, holder: 'another-sync' });
    expect(held).toBeDefined();
    const freshApi = await startApi({ fleet: fast, prefix, schema: db.schema, shared: true });
    try {
      workers = await startTestWorkers(fast, prefix, db.pool, ['host-a'], {}, undefined, { metrics: freshApi.metrics });
      const created = (await freshApi.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asOperator, payload: { model: 'waiting' } })).json();
      expect(created.state).toBe('waiting-children');
      const [childId] = created.waitsFor as [string];
      // The child has found the lock taken (a skip would complete it now, with skipped: true).
      await waitFor('the flow child to find the lock held', async () => (await lockWaits(freshApi)) > 0);
      expect((await job(childId)).finishedOn).toBeUndefined();
      expect(await (await job(created.id)).getState()).toBe('waiting-children');
      expect(await held!.release()).toBe(true);

      const child = await finished(childId);
      expect(await child.getState()).toBe('completed');
      expect(child.returnvalue).toMatchObject({ skipped: false, rows: 20 });
      expect(child.returnvalue.fence).toBeGreaterThan(held!.fence);
      const training = await finished(created.id);
      expect(await training.getState()).toBe('completed');
      expect(child.finishedOn).toBeLessThanOrEqual(training.processedOn!);
    } finally {
      await held?.release().catch(() => undefined);
      await freshApi.close();
    }
  });
});
