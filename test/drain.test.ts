// Drains: an operator takes a host, or one GPU of it, out of service through the API (or the CLI),
// and real host workers on the real Redis start nothing there until it is undrained. Running
// jobs finish, or with `now` are handed back without using an attempt; the drain outlives a
// worker restart and shows in the workers list, system health, metrics and waiting jobs.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../src/config/load-fleet.js';
import { createMetrics } from '../src/metrics.js';
import { enqueue } from '../src/queues/enqueue.js';
import type { JobKind } from '../src/queues/kinds.js';
import { drainsKey } from '../src/queues/redis-names.js';
import type { WorkerStatus } from '../src/queues/worker-status.js';
import type { JobRunResult } from '../src/workers/processors/result.js';
import type { RunningWorkers } from '../src/workers/start-workers.js';
import { asOperator, asReader, OPERATOR, READER, startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { uniqueName } from './helpers/servers.js';
import { pidAlive, waitFor } from './helpers/wait.js';
import { startTestWorkers } from './helpers/workers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-drain-'));
const gpu = (index: number) => ({ index, name: `Fake GPU ${index}`, memoryMiB: 8192 });
const model = (pool: string) => ({
  pool,
  gpusPerRun: 1,
  // One attempt: a hand-back that used one would fail the job instead of running it again.
  train: { command: ['node', 'examples/trainer.mjs', '--epochs', '1', '--epoch-ms', '100'], timeoutSeconds: 60, attempts: 1 },
  validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 },
  checkpointDir: path.join(dir, pool),
});
const fleet = parseFleet(
  {
    hosts: { 'host-a': { gpus: [gpu(0), gpu(1)], cpuSlots: 1 }, 'host-b': { gpus: [gpu(0)], cpuSlots: 1 } },
    pools: { alpha: ['host-a'], beta: ['host-b'] },
    models: { alef: model('alpha'), bet: model('beta') },
    backtest: { pool: 'beta', command: ['node', 'examples/backtester.mjs', '--bars', '20', '--bar-ms', '5'], timeoutSeconds: 60 },
    dataSync: { pool: 'beta', command: ['node', 'examples/data-syncer.mjs', '--rows', '5', '--delay-ms', '10'], timeoutSeconds: 60 },
  },
  '(drain test)',
  REPO_ROOT,
);

let api: ApiHarness;
let db: TestSchema;
let workers: RunningWorkers | undefined;
const metrics = createMetrics({ defaults: false });
beforeAll(async () => {
  db = await createTestSchema('drain');
  api = await startApi({ fleet, prefix: uniqueName('drain'), schema: db.schema });
});
afterEach(async () => {
  await workers?.close();
  workers = undefined;
  await Promise.all(api.queues.all().map((e) => e.queue.obliterate({ force: true })));
  await api.redis.del(...Object.keys(fleet.hosts).map((h) => drainsKey(api.prefix, h)));
});
afterAll(async () => {
  await api.close();
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

const start = (hosts: string[], options: { heartbeatMs?: number } = {}) => startTestWorkers(fleet, api.prefix, db.pool, hosts, options, undefined, { metrics });
const add = (kind: JobKind, payload: object) =>
  enqueue({ fleet, queues: api.queues }, kind, payload, { reason: 'api', by: 'test', at: new Date().toISOString() });
const post = (url: string, payload?: object, headers: Record<string, string> = asOperator) =>
  api.app.inject({ method: 'POST', url, headers, ...(payload ? { payload } : {}) });
const get = async (url: string) => (await api.app.inject({ method: 'GET', url, headers: asReader })).json();
const view = (id: string) => get(`/api/jobs/${id}`) as Promise<{ state: string; waitingFor?: string; progress?: { pid?: number } }>;
const workerOf = async (host: string) => ((await get('/api/workers')).workers as WorkerStatus[]).find((w) => w.host === host);

async function jobOf(id: string): Promise<Job> {
  const job = await api.queues.get(id.slice(0, id.indexOf('.')))!.queue.getJob(id);
  if (!job) throw new Error(`no job ${id}`);
  return job;
}
const finished = (id: string) => waitFor(`job ${id} to finish`, async () => ((await jobOf(id)).finishedOn ? jobOf(id) : undefined), { timeoutMs: 30_000 });
const trainerPid = (id: string) =>
  waitFor(`the trainer of ${id} to report`, async () => {
    const v = await view(id);
    return v.state === 'active' && typeof v.progress?.pid === 'number' ? v.progress.pid : undefined;
  });
/** Waits out `n` heartbeats of a host's worker: long enough for it to have started a job it could start. */
async function heartbeats(host: string, n = 3): Promise<void> {
  const seen = new Set<string>();
  await waitFor(`${n} heartbeats of ${host}`, async () => {
    const w = await workerOf(host);
    if (w) seen.add(w.at);
    return seen.size > n;
  });
}
async function sample(name: string, labels: Record<string, string>): Promise<number | undefined> {
  const values = (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

describe('draining a host', () => {
  it('lets the running job finish, starts nothing new (saying why), holds through a worker restart, and starts again on undrain', async () => {
    workers = await start(['host-b']);
    const running = await add('training', { model: 'bet', params: { epochs: 3, epoch_ms: 400 } });
    await trainerPid(running.id);

    const drained = await post('/api/workers/host-b/drain', { reason: 'disk swap' });
    expect(drained.statusCode).toBe(200);
    expect(drained.json()).toEqual({ host: 'host-b', drained: { reason: 'disk swap', by: 'operator', at: expect.any(String), now: false }, gpus: [] });
    const training = await add('training', { model: 'bet' });
    const backtest = await add('backtest', { model: 'bet', symbols: ['AAA'] });

    // The running job finishes as it would have.
    const done = await finished(running.id);
    expect(await done.getState()).toBe('completed');
    // New ones wait, a GPU job and a CPU job alike, and say why.
    await heartbeats('host-b');
    expect((await view(training.id)).waitingFor).toBe('waiting for 1 free GPU in pool beta; host-b drained: disk swap');
    expect((await view(backtest.id)).waitingFor).toBe('waiting for a free CPU slot in pool beta; host-b drained: disk swap');
    expect([(await jobOf(training.id)).processedOn, (await jobOf(backtest.id)).processedOn]).toEqual([undefined, undefined]);

    const status = await workerOf('host-b');
    expect(status?.drained).toEqual({ reason: 'disk swap', by: 'operator', at: expect.any(String) });
    expect(status?.gpus[0]).toMatchObject({ jobId: null, drained: { reason: 'disk swap' } });
    expect(await sample('caelum_gpu_drained', { host: 'host-b', gpu: '0' })).toBe(1);
    expect(await sample('caelum_host_drained', { host: 'host-b' })).toBe(1);

    // The worker restarts: the drain is in Redis, so it still starts nothing. Health lists the
    // drain while no worker runs too.
    await workers.close();
    workers = undefined;
    const health = await get('/api/system/health');
    expect(health.workers).toEqual([]);
    expect(health.drains).toEqual([{ host: 'host-b', drained: expect.objectContaining({ reason: 'disk swap' }), gpus: [] }]);
    workers = await start(['host-b']);
    await heartbeats('host-b');
    expect((await workerOf('host-b'))?.drained?.reason).toBe('disk swap');
    expect([(await jobOf(training.id)).processedOn, (await jobOf(backtest.id)).processedOn]).toEqual([undefined, undefined]);
    const live = await get('/api/system/health');
    expect(live.warnings.filter((w: string) => /drain/.test(w))).toEqual([]);
    expect(live.workers[0]).toMatchObject({ drained: { reason: 'disk swap' }, gpus: [{ index: 0, busy: false, free: false, drained: { reason: 'disk swap' } }] });

    const undrained = await post('/api/workers/host-b/undrain');
    expect(undrained.statusCode).toBe(200);
    expect(undrained.json()).toEqual({ host: 'host-b', drained: null, gpus: [] });
    for (const id of [training.id, backtest.id]) expect(await (await finished(id)).getState()).toBe('completed');
    expect(await sample('caelum_gpu_drained', { host: 'host-b', gpu: '0' })).toBe(0);
    expect(await sample('caelum_host_drained', { host: 'host-b' })).toBe(0);
    expect((await get('/api/system/health')).drains).toEqual([]);
  });

  it('with now, hands the running job back without using an attempt; it runs again after undrain', async () => {
    workers = await start(['host-b']);
    const { id } = await add('training', { model: 'bet', params: { epochs: 3, epoch_ms: 300 } });
    const pid = await trainerPid(id);

    expect((await post('/api/workers/host-b/drain', { reason: 'kernel update', now: true })).statusCode).toBe(200);
    await waitFor('the job to be handed back', async () => ((await view(id)).state === 'waiting' ? true : undefined));
    expect(pidAlive(pid)).toBe(false);
    expect((await jobOf(id)).attemptsMade).toBe(0);
    await waitFor('the reason to name the drain', async () =>
      (await view(id)).waitingFor === 'waiting for 1 free GPU in pool beta; host-b drained: kernel update' ? true : undefined,
    );
    await heartbeats('host-b');
    expect((await jobOf(id)).finishedOn).toBeUndefined();

    await post('/api/workers/host-b/undrain', {});
    const job = await finished(id);
    expect(await job.getState()).toBe('completed');
    expect(job.attemptsMade).toBe(1);
  });
});

describe('draining one GPU', () => {
  it('keeps that GPU out of service and leaves the others leasable', async () => {
    // Heartbeats (and so the fallback re-read of drains) a minute apart: the drain channel alone tells the worker.
    workers = await start(['host-a'], { heartbeatMs: 60_000 });
    const drained = await post('/api/workers/host-a/drain', { reason: 'fan noise', gpu: 1 });
    expect(drained.json()).toEqual({ host: 'host-a', drained: null, gpus: [{ gpu: 1, reason: 'fan noise', by: 'operator', at: expect.any(String), now: false }] });
    await waitFor('GPU 1 to show as drained', async () => (await workerOf('host-a'))?.gpus[1]?.drained?.reason === 'fan noise');

    const first = await add('training', { model: 'alef', params: { epochs: 3, epoch_ms: 400 } });
    const second = await add('training', { model: 'alef' });
    await trainerPid(first.id);
    await waitFor('the second job to name the drained GPU', async () =>
      (await view(second.id)).waitingFor === 'waiting for 1 free GPU in pool alpha; host-a has 0 free (host-a GPU 1 drained: fan noise)' ? true : undefined,
    );
    expect(await sample('caelum_gpu_drained', { host: 'host-a', gpu: '1' })).toBe(1);
    expect(await sample('caelum_gpu_drained', { host: 'host-a', gpu: '0' })).toBe(0);
    expect(await sample('caelum_host_drained', { host: 'host-a' })).toBe(0);
    expect(((await finished(first.id)).returnvalue as JobRunResult).gpus).toEqual([0]);
    const next = await finished(second.id);
    expect((next.returnvalue as JobRunResult).gpus).toEqual([0]);

    // Lifting the GPU's drain makes it leasable again: two jobs run side by side.
    expect((await post('/api/workers/host-a/undrain', { gpu: 1 })).json()).toEqual({ host: 'host-a', drained: null, gpus: [] });
    const pair = [await add('training', { model: 'alef', params: { epochs: 2, epoch_ms: 500 } }), await add('training', { model: 'alef', params: { epochs: 2, epoch_ms: 500 } })];
    const gpus = await Promise.all(pair.map(async ({ id }) => ((await finished(id)).returnvalue as JobRunResult).gpus[0]));
    expect(gpus.sort()).toEqual([0, 1]);
  });
});

describe('bad input', () => {
  it('refuses an unknown host, a missing or empty reason, a GPU the host has not and the read token, and changes nothing', async () => {
    const cases: [string, object | undefined, Record<string, string>, number, RegExp][] = [
      ['/api/workers/host-z/drain', { reason: 'x' }, asOperator, 404, /no host "host-z" in the fleet config; known: host-a, host-b/],
      ['/api/workers/constructor/drain', { reason: 'x' }, asOperator, 404, /no host "constructor"/],
      ['/api/workers/host-a/drain', {}, asOperator, 400, /reason/],
      ['/api/workers/host-a/drain', undefined, asOperator, 400, /reason/],
      ['/api/workers/host-a/drain', { reason: '   ' }, asOperator, 400, /reason: say why/],
      ['/api/workers/host-a/drain', { reason: 'two\nlines' }, asOperator, 400, /reason: must be one line/],
      ['/api/workers/host-a/drain', { reason: 'x'.repeat(201) }, asOperator, 400, /reason/],
      ['/api/workers/host-a/drain', { reason: 'x', gpu: 2 }, asOperator, 400, /gpu: host "host-a" has GPUs 0, 1/],
      ['/api/workers/host-a/drain', { reason: 'x', gpu: -1 }, asOperator, 400, /gpu/],
      ['/api/workers/host-a/drain', { reason: 'x', gpu: '1' }, asOperator, 400, /gpu/],
      ['/api/workers/host-a/drain', { reason: 'x', now: 'yes' }, asOperator, 400, /now/],
      ['/api/workers/host-a/drain', { reason: 'x', host: 'host-b' }, asOperator, 400, /host/],
      ['/api/workers/host-a/drain', { reason: 'x' }, asReader, 403, /needs one of the scopes operate; the token "reader" has read/],
      ['/api/workers/host-a/drain', { reason: 'x' }, {}, 401, /bearer token/],
      ['/api/workers/host-a/undrain', { gpu: 5 }, asOperator, 400, /gpu: host "host-a" has GPUs 0, 1/],
      ['/api/workers/host-z/undrain', {}, asOperator, 404, /no host "host-z"/],
      ['/api/workers/host-a/undrain', {}, asReader, 403, /needs one of the scopes operate/],
    ];
    // A drain stands, so a refused undrain that changed something would show.
    await post('/api/workers/host-b/drain', { reason: 'standing' });
    const before = await api.redis.hgetall(drainsKey(api.prefix, 'host-b'));
    for (const [url, payload, headers, status, message] of cases) {
      const res = await post(url, payload, headers);
      expect({ url, payload, status: res.statusCode, message: res.json().message }).toEqual({ url, payload, status, message: expect.stringMatching(message) });
    }
    await post('/api/workers/host-b/undrain', { gpu: 3 });
    expect(await api.redis.exists(drainsKey(api.prefix, 'host-a'), drainsKey(api.prefix, 'host-z'), drainsKey(api.prefix, 'constructor'))).toBe(0);
    expect(await api.redis.hgetall(drainsKey(api.prefix, 'host-b'))).toEqual(before);
  });
});

describe('the CLI', () => {
  it('drains and undrains through a live API, and refuses bad flags and the read token', async () => {
    // Closed with the harness.
    const base = await api.app.listen({ port: 0, host: '127.0.0.1' });
      const cli = (args: string[], token = OPERATOR) =>
        execa('node', [path.join(REPO_ROOT, 'bin/caelum-scheduler.js'), ...args], {
          cwd: REPO_ROOT,
          env: { CAELUM_API_URL: base, CAELUM_API_TOKEN: token, CAELUM_READ_TOKEN: '', LOG_LEVEL: 'warn' },
          reject: false,
          timeout: 30_000,
        });
      const drained = await cli(['drain', 'host-a', '--gpu', '1', '--reason', 'disk swap', '--now']);
      expect(drained.stderr).toBe('');
      expect(drained.stdout).toMatch(/^host-a: in service\n {2}GPU 1 drained: disk swap \(by operator at \S+; its running jobs handed back\)$/);
      const whole = await cli(['drain', 'host-a', '--reason', 'rack move', '--json']);
      expect(JSON.parse(whole.stdout)).toMatchObject({ host: 'host-a', drained: { reason: 'rack move', now: false }, gpus: [{ gpu: 1, reason: 'disk swap', now: true }] });

      const refused = await Promise.all([
        cli(['drain', 'host-a']),
        cli(['drain', 'host-a', '--reason', 'x', '--gpu', 'one']),
        cli(['drain', 'host-a', '--reason', 'x', '--gpu', '7']),
        cli(['drain', 'host-q', '--reason', 'x']),
        cli(['undrain', 'host-a'], READER),
      ]);
      expect(refused.map((r) => [r.exitCode, r.stderr.split('\n')[0]])).toEqual([
        [2, 'caelum-scheduler: --reason is required: say why (jobs waiting on the host show it)'],
        [2, 'caelum-scheduler: --gpu: expected a GPU index (a whole number), got "one"'],
        [1, 'caelum-scheduler: 400 invalid body: gpu: host "host-a" has GPUs 0, 1'],
        [1, 'caelum-scheduler: 404 no host "host-q" in the fleet config; known: host-a, host-b'],
        [1, 'caelum-scheduler: 403 POST /api/workers/:host/undrain needs one of the scopes operate; the token "reader" has read'],
      ]);
      expect(JSON.parse((await cli(['undrain', 'host-a', '--gpu', '1', '--json'])).stdout)).toMatchObject({ drained: { reason: 'rack move' }, gpus: [] });
      const undrained = await cli(['undrain', 'host-a']);
      expect([undrained.exitCode, undrained.stdout]).toEqual([0, 'host-a: in service']);
      expect(await api.redis.exists(drainsKey(api.prefix, 'host-a'))).toBe(0);
      const help = await cli(['drain', '--help']);
      expect(help.stdout).toMatch(/^Usage: caelum-scheduler drain <host> --reason <text> \[--gpu <index>\] \[--now\]/);
  });
});
