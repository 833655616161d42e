// Operations: metrics after real jobs ran, and system health through a Redis outage.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../src/config/load-fleet.js';
import { freePort } from '../src/net.js';
import { enqueue } from '../src/queues/enqueue.js';
import { asOperator, asReader, startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { uniqueName } from './helpers/servers.js';
import { PrivateRedis } from './helpers/private-redis.js';
import { sample } from './helpers/prometheus-text.js';
import { waitFor } from './helpers/wait.js';
import { startTestWorkers } from './helpers/workers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-ops-'));
const trainer = { command: ['node', 'examples/trainer.mjs', '--epochs', '1', '--epoch-ms', '100'], timeoutSeconds: 60, attempts: 2, backoffSeconds: 0.2 };
const fleet = parseFleet(
  {
    hosts: { 'host-b': { gpus: [{ index: 0, name: 'Fake GPU', memoryMiB: 8192 }], cpuSlots: 2 } },
    pools: { beta: ['host-b'] },
    models: {
      ops: { pool: 'beta', train: trainer, validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 }, checkpointDir: path.join(dir, 'ops') },
    },
    backtest: { pool: 'beta', command: ['node', 'examples/backtester.mjs'], timeoutSeconds: 60 },
    dataSync: { pool: 'beta', command: ['node', 'examples/data-syncer.mjs', '--delay-ms', '10'], timeoutSeconds: 60 },
  },
  '(operations test)',
  REPO_ROOT,
);

let db: TestSchema;
beforeAll(async () => {
  db = await createTestSchema('ops');
});
afterAll(async () => {
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

const finished = async (api: ApiHarness, id: string, timeoutMs = 30_000) =>
  waitFor(`job ${id}`, async () => {
    const job = (await api.queues.get(id.slice(0, id.indexOf('.')))!.queue.getJob(id)) as Job | undefined;
    return job?.finishedOn ? job : undefined;
  }, { timeoutMs });


describe('metrics', () => {
  it('hold the expected series and values after a few jobs ran', async () => {
    const api = await startApi({ fleet, schema: db.schema });
    const workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b'], {}, undefined, { metrics: api.metrics });
    try {
      const add = (kind: 'training' | 'data-sync', payload: object) =>
        enqueue({ fleet, queues: api.queues }, kind, payload, { reason: 'api', by: 'test', at: new Date().toISOString() });
      const ok = await add('training', { model: 'ops' });
      const bad = await add('training', { model: 'ops', params: { fail_at_epoch: 1 } });
      const sync = await add('data-sync', { symbol: 'MET' });
      await Promise.all([finished(api, ok.id), finished(api, bad.id), finished(api, sync.id)]);
      await finished(api, `deploy-test-ops.validate-1`);

      const res = await api.app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      const text = res.body;
      const training = { kind: 'training', model: 'ops' };
      expect(sample(text, 'caelum_job_duration_seconds_count', { ...training, outcome: 'completed' })).toBe(1);
      expect(sample(text, 'caelum_job_duration_seconds_count', { ...training, outcome: 'failed' })).toBe(2);
      expect(sample(text, 'caelum_job_failures_total', training)).toBe(2);
      expect(sample(text, 'caelum_job_retries_total', training)).toBe(1);
      expect(sample(text, 'caelum_job_wait_seconds_count', { kind: 'training' })).toBe(3);
      expect(sample(text, 'caelum_jobs', { queue: 'training-ops', state: 'completed' })).toBe(1);
      expect(sample(text, 'caelum_jobs', { queue: 'training-ops', state: 'failed' })).toBe(1);
      expect(sample(text, 'caelum_gpu_leased', { host: 'host-b', gpu: '0' })).toBe(0);
      expect(sample(text, 'caelum_lock_grants_total')).toBe(1);
      expect(sample(text, 'caelum_workers_live', { host: 'host-b' })).toBe(1);
      expect(sample(text, 'caelum_feed_waiting_clients')).toBe(0);
      // No job id ever becomes a label.
      expect(text).not.toContain(ok.id);
    } finally {
      await workers.close();
      await api.close();
    }
  });
});

describe('system health warnings', () => {
  it('answers degraded with every warning that applies, and ok once none does', async () => {
    const redisDir = mkdtempSync(path.join(os.tmpdir(), 'caelum-redis-'));
    // A private Redis that keeps nothing on disk, and no worker yet: two warnings.
    const server = await PrivateRedis.start(redisDir, { appendOnly: false });
    const api = await startApi({ fleet, schema: db.schema, redisUrl: server.url, prefix: uniqueName('degraded') });
    const admin = new Redis(server.url);
    let workers: Awaited<ReturnType<typeof startTestWorkers>> | undefined;
    const health = () => api.app.inject({ method: 'GET', url: '/api/system/health', headers: asReader });
    try {
      const degraded = await health();
      expect(degraded.statusCode).toBe(200);
      expect(degraded.json()).toMatchObject({ status: 'degraded', workers: [], redis: { ok: true, safety: { appendonly: false } }, postgres: { ok: true } });
      expect(degraded.json().warnings).toEqual([
        'Redis keeps nothing on disk (neither AOF nor RDB): a restart loses every queued job; set appendonly yes',
        'no worker is running: jobs will wait',
      ]);

      await admin.config('SET', 'appendonly', 'yes');
      const onlyWorkers = (await health()).json();
      expect(onlyWorkers).toMatchObject({ status: 'degraded', warnings: ['no worker is running: jobs will wait'] });

      workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b'], {}, undefined, { redisUrl: server.url });
      const ok = await waitFor('health with the worker up', async () => {
        const res = await health();
        return res.json().workers.length === 1 ? res : undefined;
      });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toMatchObject({ status: 'ok', warnings: [] });
    } finally {
      await workers?.close();
      await api.close();
      admin.disconnect();
      await server.kill9();
      rmSync(redisDir, { recursive: true, force: true });
    }
  });
});

describe('system health through a Redis outage', () => {
  it('answers 503 within its timeout while Redis is down, then 200 with the workers back and no job lost', async () => {
    const port = await freePort();
    const redisDir = mkdtempSync(path.join(os.tmpdir(), 'caelum-redis-'));
    // A private Redis that keeps its data (AOF), so it can be stopped and started again.
    const startRedis = async (): Promise<ChildProcess> => {
      const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
      const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => {});
      await waitFor('redis-server', async () => {
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          return false;
        }
      });
      probe.disconnect();
      return child;
    };
    const stopRedis = (child: ChildProcess) => new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
    let redis = await startRedis();
    const url = `redis://127.0.0.1:${port}`;
    const api = await startApi({ fleet, schema: db.schema, redisUrl: url, prefix: uniqueName('outage') });
    const workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b'], { lockDurationMs: 3000, stalledIntervalMs: 1000 }, undefined, { redisUrl: url });
    const health = () => api.app.inject({ method: 'GET', url: '/api/system/health', headers: asReader });
    try {
      await waitFor('a healthy system with its worker', async () => (await health()).json().workers?.length === 1);
      const before = (await api.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asOperator, payload: { model: 'ops', params: { epochs: 4, epoch_ms: 400 } } })).json();

      await stopRedis(redis);
      const started = Date.now();
      const down = await health();
      expect(Date.now() - started).toBeLessThan(3000);
      expect(down.statusCode).toBe(503);
      expect(down.json()).toMatchObject({ status: 'down', down: ['redis'], postgres: { ok: true } });
      // An enqueue while Redis is down is refused at once: nothing is accepted that could be lost.
      const refused = await api.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asOperator, payload: { model: 'ops' } });
      expect(refused.statusCode).toBe(503);

      redis = await startRedis();
      await waitFor('health to recover with the worker back', async () => {
        const res = await health();
        return res.statusCode === 200 && res.json().workers.length === 1;
      }, { timeoutMs: 20_000 });
      const after = (await api.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asOperator, payload: { model: 'ops' } })).json();
      for (const id of [before.id, after.id]) expect(await (await finished(api, id, 40_000)).getState()).toBe('completed');
      const body = (await health()).json();
      expect(body.warnings).not.toContain('no worker is running: jobs will wait');
      expect(body.redis.safety).toMatchObject({ appendonly: true, evictionPolicy: 'noeviction' });
    } finally {
      await workers.close();
      await api.close();
      await stopRedis(redis);
      rmSync(redisDir, { recursive: true, force: true });
    }
  });
});
