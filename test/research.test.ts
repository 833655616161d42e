// The research pipeline and backtest results, end to end with real workers and child processes.
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../src/config/load-fleet.js';
import { enqueue } from '../src/queues/enqueue.js';
import type { RunningWorkers } from '../src/workers/start-workers.js';
import { asOperator, asReader, startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { uniqueName } from './helpers/servers.js';
import { waitFor } from './helpers/wait.js';
import { startTestWorkers } from './helpers/workers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-research-'));
const fleet = parseFleet(
  {
    hosts: { 'host-a': { gpus: [{ index: 0, name: 'Fake GPU', memoryMiB: 8192 }], cpuSlots: 4 } },
    pools: { alpha: ['host-a'] },
    models: {
      quant: {
        pool: 'alpha',
        train: { command: ['node', 'examples/trainer.mjs', '--epochs', '1', '--epoch-ms', '50'], timeoutSeconds: 60, attempts: 1 },
        validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60, attempts: 1 },
        thresholds: { val_accuracy: { min: 0.5 } },
        maxRegression: 0.5,
        checkpointDir: path.join(dir, 'quant'),
      },
      careful: {
        pool: 'alpha',
        train: { command: ['node', 'examples/trainer.mjs', '--epochs', '1', '--epoch-ms', '50'], timeoutSeconds: 60, attempts: 1 },
        validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60, attempts: 1 },
        thresholds: { val_accuracy: { min: 0.5 } },
        maxRegression: 0.5,
        checkpointDir: path.join(dir, 'careful'),
        autoPromote: true,
        compareBeforePromotion: { symbols: ['AAPL', 'MSFT'] },
      },
    },
    backtest: { pool: 'alpha', command: ['node', 'examples/backtester.mjs', '--bars', '150'], timeoutSeconds: 60, attempts: 1 },
    dataSync: { pool: 'alpha', command: ['node', 'examples/data-syncer.mjs'], timeoutSeconds: 60 },
  },
  '(research test)',
  REPO_ROOT,
);

let db: TestSchema;
let api: ApiHarness;
let workers: RunningWorkers;
beforeAll(async () => {
  db = await createTestSchema('research');
  api = await startApi({ fleet, schema: db.schema, prefix: uniqueName('research') });
  workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-a']);
});
afterAll(async () => {
  await workers.close();
  await api.close();
  await db.drop();
});

const get = (url: string) => api.app.inject({ method: 'GET', url, headers: asReader });
const post = (url: string, payload: object) => api.app.inject({ method: 'POST', url, headers: asOperator, payload });
const finished = (id: string) =>
  waitFor(`job ${id}`, async () => {
    const job = (await api.queues.get(id.slice(0, id.indexOf('.')))!.queue.getJob(id)) as Job | undefined;
    return job?.finishedOn ? job : undefined;
  }, { timeoutMs: 30_000 });
const completedPipeline = (id: string) =>
  waitFor(`pipeline ${id}`, async () => {
    const view = (await get(`/api/pipelines/${id}`)).json();
    return view.state === 'completed' || view.state === 'failed' ? view : undefined;
  }, { timeoutMs: 60_000 });

describe('the research pipeline', () => {
  it('trains, backtests the new and the promoted checkpoint across symbols in parallel, and summarises', async () => {
    // A live checkpoint to compare with.
    const first = await enqueue({ fleet, queues: api.queues }, 'training', { model: 'quant' }, { reason: 'api', by: 'test', at: new Date().toISOString() });
    const { registered } = (await finished(first.id)).returnvalue as { registered: { id: number }[] };
    await finished(`deploy-test-quant.validate-${registered[0]!.id}`);
    expect((await post(`/api/checkpoints/${registered[0]!.id}/promote`, {})).statusCode).toBe(200);

    const res = await post('/api/pipelines/research', {
      model: 'quant',
      primarySymbol: 'AAPL',
      symbols: ['AAPL', 'MSFT', 'NVDA'],
      timeframe: '1d',
      testWindow: { from: '2026-01-01', to: '2026-06-30' },
      params: { target_accuracy: 0.8 },
    });
    expect(res.statusCode).toBe(201);
    const view = await completedPipeline(res.json().id);
    expect(view.state).toBe('completed');
    expect(view.steps.training.state).toBe('completed');
    expect(view.steps.backtests).toHaveLength(6);
    expect(view.steps.backtests.every((b: { state: string }) => b.state === 'completed')).toBe(true);
    const summary = view.summary;
    expect(summary.promoted.id).toBe(registered[0]!.id);
    expect(summary.checkpoint.id).toBe(view.checkpointId);
    expect(summary.symbols.map((s: { symbol: string }) => s.symbol)).toEqual(['AAPL', 'MSFT', 'NVDA']);
    for (const s of summary.symbols) {
      expect(s.candidate).toMatchObject({ sharpeRatio: expect.any(Number), totalReturn: expect.any(Number), maxDrawdown: expect.any(Number), winRate: expect.any(Number) });
      expect(s.promoted.sharpeRatio).toEqual(expect.any(Number));
    }
    expect(summary.overall.sharpeDelta).toEqual(expect.any(Number));
    expect(summary.failed).toEqual([]);

    // Every backtest is a row per symbol, queryable.
    const rows = (await get(`/api/backtests?model=quant&symbol=AAPL`)).json();
    expect(rows.results.map((r: { checkpointId: number }) => r.checkpointId).sort()).toEqual([registered[0]!.id, view.checkpointId].sort());
    expect(rows.results[0]).toMatchObject({ timeframe: '1d', windowFrom: '2026-01-01T00:00:00.000Z', windowTo: '2026-06-30T00:00:00.000Z' });
    const byCheckpoint = (await get('/api/backtests/summary?groupBy=checkpoint')).json().groups;
    expect(byCheckpoint.map((g: { count: number }) => g.count)).toEqual([3, 3]);
    const bySymbol = (await get('/api/backtests/summary?groupBy=symbol&model=quant')).json().groups;
    expect(bySymbol.map((g: { symbol: string }) => g.symbol).sort()).toEqual(['AAPL', 'MSFT', 'NVDA']);
  });

  it('a backtest that fails does not leave the pipeline waiting: the summary lists it', async () => {
    const res = await post('/api/pipelines/research', { model: 'quant', primarySymbol: 'AAPL', symbols: ['AAPL', 'NODATA'] });
    const view = await completedPipeline(res.json().id);
    expect(view.state).toBe('completed');
    expect(view.summary.failed).toHaveLength(2); // the candidate's and the promoted one's backtests of NODATA
    expect(view.summary.failed[0].reason).toMatch(/no bars for NODATA/);
    expect(view.summary.symbols.find((s: { symbol: string }) => s.symbol === 'AAPL').candidate.sharpeRatio).toEqual(expect.any(Number));
  });

  it('refuses a bad request, and answers 404 for an unknown pipeline', async () => {
    expect((await post('/api/pipelines/research', { model: 'gpt', primarySymbol: 'AAPL', symbols: ['AAPL'] })).json().message).toMatch(/unknown model "gpt"/);
    expect((await post('/api/pipelines/research', { model: 'quant', primarySymbol: 'AAPL', symbols: [] })).statusCode).toBe(400);
    expect((await get('/api/pipelines/00000000-0000-0000-0000-000000000000')).statusCode).toBe(404);
    expect((await get('/api/backtests/summary?groupBy=host')).statusCode).toBe(400);
  });
});

describe('backtesting a checkpoint', () => {
  it('backtests a validated checkpoint against the promoted one before promoting it, and records the comparison', async () => {
    const train = async (target: number) => {
      const job = await enqueue({ fleet, queues: api.queues }, 'training', { model: 'careful', params: { target_accuracy: target } }, {
        reason: 'api',
        by: 'test',
        at: new Date().toISOString(),
      });
      return ((await finished(job.id)).returnvalue as { registered: { id: number }[] }).registered[0]!.id;
    };
    // The first has nothing to compare with: autoPromote promotes it once validated.
    const first = await train(0.6);
    await waitFor('the first to be promoted', async () => (await api.registry.checkpoints.get(first))?.status === 'promoted');
    // The second, more accurate, is backtested against it first, then promoted.
    const second = await train(0.9);
    const compared = await waitFor('the comparison', async () => {
      const c = await api.registry.checkpoints.get(second);
      return c?.lineage.comparison ? c : undefined;
    });
    expect(compared.lineage.comparison).toMatchObject({ pipeline: `compare-${second}`, promoted: { id: first }, verdict: 'better than the promoted checkpoint' });
    await waitFor('the second to be promoted', async () => (await api.registry.checkpoints.get(second))?.status === 'promoted');
    expect((await api.registry.checkpoints.get(first))!.status).toBe('superseded');
    const view = (await get(`/api/pipelines/compare-${second}`)).json();
    expect(view).toMatchObject({ kind: 'comparison', state: 'completed' });
  });

  it('backtests the promoted checkpoint by name, and records its rows once however often the job runs', async () => {
    const job = await enqueue({ fleet, queues: api.queues }, 'backtest', { model: 'quant', checkpoint: 'promoted', symbols: ['SPY'] }, {
      reason: 'api',
      by: 'test',
      at: new Date().toISOString(),
    });
    const done = await finished(job.id);
    const promoted = await api.registry.checkpoints.promoted('quant');
    expect(done.returnvalue).toMatchObject({ checkpoint: { id: promoted!.id }, symbols: [{ symbol: 'SPY' }] });
    await done.retry('completed');
    await waitFor('the rerun', async () => {
      const j = (await api.queues.get('backtest')!.queue.getJob(job.id)) as Job;
      return j.attemptsMade >= 2 && j.finishedOn ? true : undefined;
    });
    expect((await api.registry.backtests.list({ model: 'quant', symbol: 'SPY', limit: 10, offset: 0 })).total).toBe(1);
  });
});
