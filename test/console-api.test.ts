// The read routes the console stands on: who a token is (/api/auth/me), the fleet as configured
// (/api/fleet), failures since a time (/api/failures) and the staleness of market data
// (/api/data-sync). Real Redis, Postgres and BullMQ; jobs are failed with BullMQ's own calls.
import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asOperator, asReader, startApi, type ApiHarness } from './helpers/api.js';
import { testFleet, testFleetInput } from './helpers/fleet.js';
import { takeJob } from './helpers/take-job.js';
import { waitFor } from './helpers/wait.js';

const base = testFleetInput();
const fleet = testFleet({
  models: {
    ...base.models,
    'model-a': { ...base.models['model-a']!, symbols: ['AAPL', 'MSFT'], freshData: { timeframe: '1d', maxAgeHours: 2 }, thresholds: { val_accuracy: { min: 0.6 } } },
    // A looser rule on a symbol model-a also needs: the stricter one wins.
    'model-b': { ...base.models['model-b']!, symbols: ['AAPL'], freshData: { timeframe: '1d', maxAgeHours: 30 } },
  },
});

let h: ApiHarness;
beforeAll(async () => {
  h = await startApi({ fleet });
});
afterAll(async () => {
  await h.close();
});

const get = (url: string, headers: Record<string, string> = asReader) => h.app.inject({ method: 'GET', url, headers });

describe('GET /api/auth/me', () => {
  it('names the principal and its scopes', async () => {
    const operator = (await get('/api/auth/me', asOperator)).json();
    expect(operator).toMatchObject({ name: 'operator', principal: 'operator' });
    expect([...operator.scopes].sort()).toEqual(['enqueue', 'operate', 'read', 'report-loads']);
    expect((await get('/api/auth/me', asReader)).json()).toEqual({ name: 'reader', principal: 'reader', scopes: ['read'] });
  });

  it('refuses a missing or unknown token', async () => {
    expect((await get('/api/auth/me', {})).statusCode).toBe(401);
    const res = await get('/api/auth/me', { authorization: 'Bearer not-a-token-of-ours' });
    expect(res.statusCode).toBe(401);
    expect(res.json().error).toBe('unauthorized');
  });
});

describe('GET /api/fleet', () => {
  it('lists hosts with their GPUs and pools, and models with their thresholds, without commands or paths', async () => {
    const res = await get('/api/fleet');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.hosts.map((x: { id: string }) => x.id)).toEqual(['host-a', 'host-b']);
    expect(body.hosts[0]).toMatchObject({ id: 'host-a', cpuSlots: 2, pools: ['alpha', 'everyone'], gpus: [{ index: 0 }, { index: 1 }] });
    const modelA = body.models.find((m: { name: string }) => m.name === 'model-a');
    expect(modelA).toMatchObject({ pool: 'alpha', gpusPerRun: 2, thresholds: { val_accuracy: { min: 0.6 } }, maxRegression: 0.05, freshData: { maxAgeHours: 2 } });
    expect(res.body).not.toContain('trainer.mjs');
    expect(res.body).not.toContain('test-checkpoints');
  });
});

describe('GET /api/data-sync staleness', () => {
  it('marks a key stale past the strictest freshData of the models training on it, and lists needed keys never synced', async () => {
    const md = h.registry.marketData;
    for (const symbol of ['AAPL', 'MSFT', 'SPY']) {
      const fence = await md.nextFence();
      await md.recordGrant(`data-sync:${symbol}:1d`, fence);
      expect((await md.recordSync({ symbol, timeframe: '1d', fence, jobId: `sync-${symbol}`, source: 'test', rows: 5, from: null, to: null })).written).toBe(true);
    }
    // MSFT's sync is three hours old: past model-a's two hours.
    await h.pool.query("update market_data_syncs set synced_at = now() - interval '3 hours' where symbol = 'MSFT'");
    const { keys } = (await get('/api/data-sync')).json();
    const key = (symbol: string, timeframe = '1d') => keys.find((k: { symbol: string; timeframe: string }) => k.symbol === symbol && k.timeframe === timeframe);
    expect(key('AAPL')).toMatchObject({ maxAgeHours: 2, stale: false, fence: expect.any(Number), state: 'idle' });
    expect(key('AAPL').ageSeconds).toBeLessThan(60);
    expect(key('MSFT')).toMatchObject({ maxAgeHours: 2, stale: true });
    expect(key('MSFT').ageSeconds).toBeGreaterThanOrEqual(3 * 3600 - 60);
    // No model asks SPY to be fresh: never stale, however old.
    expect(key('SPY')).toMatchObject({ maxAgeHours: null, stale: false });
  });

  it('lists a key a model needs before its first sync, as stale', async () => {
    const fresh = testFleet({ models: { ...base.models, 'model-b': { ...base.models['model-b']!, symbols: ['NVDA'], freshData: { timeframe: '1h', maxAgeHours: 1 } } } });
    const other = await startApi({ fleet: fresh });
    try {
      const { keys } = (await other.app.inject({ method: 'GET', url: '/api/data-sync', headers: asReader })).json();
      expect(keys).toEqual([
        { symbol: 'NVDA', timeframe: '1h', lastSync: null, ageSeconds: null, maxAgeHours: 1, stale: true, fence: null, holder: null, state: 'idle' },
      ]);
    } finally {
      await other.close();
    }
  });
});

describe('GET /api/failures', () => {
  /** Enqueues a data sync and fails it for good with `reason`, after writing `log` to its log. */
  async function failOne(symbol: string, reason: string, log: string[]): Promise<{ id: string; finishedOn: number }> {
    const { id } = (await h.app.inject({ method: 'POST', url: '/api/jobs/data-sync', payload: { symbol }, headers: asOperator })).json();
    const { job, token, worker } = await takeJob(h.prefix, 'data-sync');
    try {
      expect(job.id).toBe(id);
      for (const line of log) await job.log(line);
      await job.moveToFailed(new UnrecoverableError(reason), token, false);
    } finally {
      await worker.close();
    }
    const view = (await get(`/api/jobs/${id}`)).json();
    return { id, finishedOn: Date.parse(view.finishedAt) };
  }

  it('lists jobs failed for good since a time, newest first, with reason and log tail; a retried one leaves the list', async () => {
    const older = await failOne('QQQ', 'source timed out', ['connecting to the source']);
    const since = older.finishedOn + 1;
    await waitFor('the clock to pass the first failure', () => Date.now() > since);
    const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    const newer = await failOne('IWM', 'no data source answers for IWM', lines);

    const all = (await get('/api/failures')).json();
    expect(all.failures.map((f: { id: string }) => f.id)).toEqual([newer.id, older.id]);
    expect(all.total).toBe(2);
    expect(all.failures[0]).toMatchObject({ kind: 'data-sync', queue: 'data-sync', state: 'failed', failureReason: 'no data source answers for IWM', payload: { symbol: 'IWM' } });
    // The newest 20 lines, oldest first.
    expect(all.failures[0].logs).toEqual(lines.slice(10));
    expect(all.failures[1].logs).toEqual(['connecting to the source']);

    const recent = (await get(`/api/failures?since=${new Date(since).toISOString()}`)).json();
    expect(recent.failures.map((f: { id: string }) => f.id)).toEqual([newer.id]);
    expect(recent.total).toBe(1);
    expect((await get('/api/failures?kind=training')).json().failures).toEqual([]);
    expect((await get('/api/failures?limit=1')).json()).toMatchObject({ failures: [{ id: newer.id }], total: 2, limit: 1 });

    expect((await h.app.inject({ method: 'POST', url: `/api/jobs/${newer.id}/retry`, headers: asOperator })).statusCode).toBe(200);
    expect((await get('/api/failures')).json().failures.map((f: { id: string }) => f.id)).toEqual([older.id]);
  });

  it('refuses a bad since, kind or limit, naming the field', async () => {
    for (const [query, field] of [
      ['since=yesterday', 'since'],
      ['kind=nap', 'kind'],
      ['limit=0', 'limit'],
      ['color=red', ''],
    ] as const) {
      const res = await get(`/api/failures?${query}`);
      expect(res.statusCode, query).toBe(400);
      if (field) expect(res.json().details[0].path, query).toBe(field);
    }
  });
});
