// Train -> register -> validate -> feed, end to end: real workers and child processes, the real
// API on a real port, the real Postgres (a schema of this file's own) and Redis.
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../src/config/load-fleet.js';
import { enqueue } from '../src/queues/enqueue.js';
import type { JobKind } from '../src/queues/kinds.js';
import type { RunningWorkers } from '../src/workers/start-workers.js';
import { asOperator, asReader, LOAD_REPORTER, OPERATOR, READER, startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { REPO_ROOT, stubDeployTest } from './helpers/fleet.js';
import { createPool } from '../src/registry/pool.js';
import { testLogger } from './helpers/logger.js';
import { DATABASE_URL, uniqueName } from './helpers/servers.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { waitFor } from './helpers/wait.js';
import { startTestWorkers } from './helpers/workers.js';
import { listWorkers } from '../src/queues/worker-status.js';

const checkpoints = mkdtempSync(path.join(os.tmpdir(), 'caelum-flow-'));
const train = { command: ['node', 'examples/trainer.mjs', '--epochs', '1', '--epoch-ms', '100'], timeoutSeconds: 60, attempts: 1 };
const validate = { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60, attempts: 1 };
const model = (name: string, extra: object = {}) => ({
  pool: 'alpha',
  gpusPerRun: 1,
  train,
  validate,
  thresholds: { val_accuracy: { min: 0.5 } },
  checkpointDir: path.join(checkpoints, name),
  ...extra,
});
const fleet = parseFleet(
  {
    hosts: { 'host-a': { gpus: [{ index: 0, name: 'Fake GPU', memoryMiB: 8192 }], cpuSlots: 2 } },
    pools: { alpha: ['host-a'] },
    models: {
      good: model('good'),
      picky: model('picky', { thresholds: { val_accuracy: { min: 0.95 } } }),
      deployed: model('deployed', {
        ...stubDeployTest,
      }),
      // A service that never loads its model: /health answers 503 for as long as the test runs.
      unhealthy: model('unhealthy', {
        validate: { ...validate, attempts: 2, backoffSeconds: 0.1 },
        validation: 'deploy-test',
        deployTest: {
          service: { command: ['node', 'examples/fincoll-stub.mjs', '--load-ms', '600000'], timeoutSeconds: 60 },
          accuracy: { command: ['node', 'examples/accuracy-check.mjs', '--samples', '20'], timeoutSeconds: 60 },
          health: { intervalSeconds: 0.1, timeoutSeconds: 1, retries: 2, startPeriodSeconds: 0 },
        },
      }),
    },
    backtest: { pool: 'alpha', command: ['node', 'examples/backtester.mjs'], timeoutSeconds: 60 },
    dataSync: { pool: 'alpha', command: ['node', 'examples/data-syncer.mjs'], timeoutSeconds: 60 },
  },
  '(flow test)',
  REPO_ROOT,
);

let db: TestSchema;
let api: ApiHarness;
let base: string;
let workers: RunningWorkers | undefined;
const prefix = uniqueName('flow');

beforeAll(async () => {
  db = await createTestSchema('flow');
  api = await startApi({ fleet, prefix, schema: db.schema });
  base = await api.app.listen({ port: 0, host: '127.0.0.1' });
});
afterEach(async () => {
  await workers?.close();
  workers = undefined;
});
afterAll(async () => {
  await api.close();
  await db.drop();
});

const add = (kind: JobKind, payload: object) =>
  enqueue({ fleet, queues: api.queues }, kind, payload, { reason: 'api', by: 'test', at: new Date().toISOString() });
const getJob = (id: string) => api.queues.get(id.slice(0, id.indexOf('.')))!.queue.getJob(id) as Promise<Job>;
const finished = (id: string) => waitFor(`job ${id}`, async () => ((await getJob(id))?.finishedOn ? getJob(id) : undefined), { timeoutMs: 30_000 });
const http = async (method: string, url: string, token = READER, body?: object) => {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  // Response bodies are checked field by field below; `any` keeps that readable.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const json: any = res.status === 304 ? null : await res.json();
  return { status: res.status, body: json, headers: res.headers };
};
const validationJob = async (trainingId: string) => {
  const training = await finished(trainingId);
  const { registered } = training.returnvalue as { registered: { id: number }[] };
  return { checkpointId: registered[0]!.id, job: await finished(`deploy-test-${training.data.payload.model}.validate-${registered[0]!.id}`) };
};

describe('train, register, validate, feed', () => {
  it('answers a feed request that was waiting before validation, within a second, on every API process', async () => {
    const second = await startApi({ fleet, prefix, schema: db.schema, shared: true });
    const secondBase = await second.app.listen({ port: 0, host: '127.0.0.1' });
    try {
      workers = await startTestWorkers(fleet, prefix, db.pool, ['host-a']);
      const waiting = [base, secondBase].map((b) =>
        fetch(`${b}/api/checkpoints/feed?model=good&after=0&wait=25`, { headers: { authorization: `Bearer ${READER}` } }).then(
          async (res) => ({
            at: Date.now(),
            status: res.status,
            body: (await res.json()) as { checkpoints: { id: number; status: string; label: string; validatedAt: string }[]; cursor: string },
          }),
        ),
      );
      const training = await add('training', { model: 'good' });
      const answers = await Promise.all(waiting);
      const { checkpointId } = await validationJob(training.id);
      const { rows } = await db.pool.query<{ at: Date }>(
        "select created_at as at from checkpoint_events where checkpoint_id = $1 and to_status = 'validated'",
        [checkpointId],
      );
      for (const a of answers) {
        expect(a.status).toBe(200);
        expect(a.body.checkpoints.map((c) => [c.id, c.status])).toEqual([[checkpointId, 'validated']]);
        expect(a.at - rows[0]!.at.getTime()).toBeLessThan(1000);
      }
      // The cursor moves on: asking after it returns nothing, and a plain poll can be cached.
      const cursor = answers[0]!.body.cursor;
      const poll = await http('GET', `/api/checkpoints/feed?model=good&after=${cursor}`);
      expect(poll.body).toEqual({ checkpoints: [], cursor });
      const etag = poll.headers.get('etag')!;
      const cached = await fetch(`${base}/api/checkpoints/feed?model=good&after=${cursor}`, {
        headers: { authorization: `Bearer ${READER}`, 'if-none-match': etag },
      });
      expect(cached.status).toBe(304);

      // The whole lineage is there.
      const detail = await http('GET', `/api/checkpoints/${checkpointId}`);
      expect(detail.body.checkpoint).toMatchObject({ model: 'good', status: 'validated', trainingJobId: training.id, label: 'good-v1.1.0' });
      expect(detail.body.lineage.trigger).toMatchObject({ reason: 'api', jobId: training.id });
      expect(detail.body.lineage.validations).toMatchObject([{ action: 'validate', status: 'passed', host: 'host-a' }]);
      expect(detail.body.history.map((e: { toStatus: string }) => e.toStatus)).toEqual(['registered', 'validating', 'validated']);

      // Each feed entry says when it was validated, so FinColl can tell how fresh it is.
      const validatedAt = answers[0]!.body.checkpoints[0]!.validatedAt;
      expect(validatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(validatedAt).toBe(rows[0]!.at.toISOString());
      expect(Math.abs(Date.now() - Date.parse(validatedAt))).toBeLessThan(60_000);
      expect(Date.parse(validatedAt)).toBeGreaterThanOrEqual(Date.parse(detail.body.checkpoint.createdAt));
      expect(answers[1]!.body.checkpoints[0]!.validatedAt).toBe(validatedAt);

      // A rerun of the same training job registers nothing new.
      await (await getJob(training.id)).retry('completed');
      const rerun = await waitFor('the rerun', async () => {
        const j = await getJob(training.id);
        return j.attemptsMade >= 2 && j.finishedOn ? j : undefined;
      });
      expect((rerun.returnvalue as { registered: { created: boolean }[] }).registered[0]!.created).toBe(false);
      expect((await http('GET', '/api/checkpoints?model=good')).body.total).toBe(1);
    } finally {
      await second.close();
    }
  });

  it('rejects a checkpoint whose metrics miss the thresholds, with the reasons, and keeps it off the feed', async () => {
    workers = await startTestWorkers(fleet, prefix, db.pool, ['host-a']);
    const training = await add('training', { model: 'picky' });
    const { checkpointId, job } = await validationJob(training.id);
    expect(job.returnvalue).toMatchObject({ passed: false, status: 'rejected' });
    const detail = (await http('GET', `/api/checkpoints/${checkpointId}`)).body;
    expect(detail.checkpoint.status).toBe('rejected');
    expect(detail.checkpoint.rejectionReasons[0]).toMatch(/^val_accuracy 0\.\d+ is below the minimum 0\.95$/);
    expect(detail.lineage.validations[0]).toMatchObject({ status: 'failed' });
    expect((await http('GET', '/api/checkpoints/feed?model=picky')).body.checkpoints).toEqual([]);
    const promote = await http('POST', `/api/checkpoints/${checkpointId}/promote`, OPERATOR, {});
    expect(promote.status).toBe(409);
    expect(promote.body.message).toMatch(/is rejected/);
    expect((await http('GET', `/api/checkpoints/${checkpointId}`)).body.checkpoint.status).toBe('rejected');
  });

  it('deploy-tests a candidate: starts the service, waits for health, checks accuracy, stops it', async () => {
    workers = await startTestWorkers(fleet, prefix, db.pool, ['host-a']);
    const training = await add('training', { model: 'deployed' });
    const { checkpointId, job } = await validationJob(training.id);
    expect(job.returnvalue).toMatchObject({ action: 'deploy-test', passed: true, status: 'validated', metrics: { health: 1 } });
    const [run] = (await http('GET', `/api/checkpoints/${checkpointId}`)).body.lineage.validations;
    expect(run).toMatchObject({ action: 'deploy-test', status: 'passed', service: 'fincoll' });
    expect(run.logs).toMatch(/health check \d+: 200/);
    expect(run.logs).toMatch(/accuracy check exited 0/);
  });

  it('retries a deploy test whose service never gets healthy per its health settings, then rejects the checkpoint saying why', async () => {
    workers = await startTestWorkers(fleet, prefix, db.pool, ['host-a']);
    const { checkpointId, job } = await validationJob((await add('training', { model: 'unhealthy' })).id);
    expect(await job.getState()).toBe('failed');
    expect(job.attemptsMade).toBe(2);
    const reason = /^the candidate service was not healthy at http:\/\/127\.0\.0\.1:\d+\/health after 2 retries$/;
    expect(job.failedReason).toMatch(reason);
    const detail = (await http('GET', `/api/checkpoints/${checkpointId}`)).body;
    expect(detail.checkpoint.status).toBe('rejected');
    expect(detail.checkpoint.rejectionReasons).toEqual([`deploy-test could not run: ${job.failedReason}`]);
    const runs = detail.lineage.validations;
    expect(runs).toHaveLength(2);
    for (const run of runs) {
      expect(run).toMatchObject({ action: 'deploy-test', status: 'error', service: 'fincoll' });
      expect(run.reasons[0]).toMatch(reason);
      // No start period, two retries: the first check and two more, each refused (not listening
      // yet) or answered 503 (still loading), and then no more.
      expect(run.logs.split('\n')).toEqual([1, 2, 3].map((n) => expect.stringMatching(new RegExp(`^health check ${n}: (503|fetch failed)$`))));
    }
  });

  it('promotes, reports loads and rolls back through the API, refusing bad requests without changing anything', async () => {
    workers = await startTestWorkers(fleet, prefix, db.pool, ['host-a']);
    const ids: number[] = [];
    for (let i = 0; i < 2; i++) ids.push((await validationJob((await add('training', { model: 'good' })).id)).checkpointId);
    const [older, newer] = ids as [number, number];
    expect((await http('POST', `/api/checkpoints/${older}/promote`, READER, {})).status).toBe(403);
    expect((await http('POST', `/api/checkpoints/${older}/promote`, 'x'.repeat(20), {})).status).toBe(401);
    expect((await http('POST', `/api/checkpoints/${older}/promote`, OPERATOR, { reason: 'first live' })).body.checkpoint.status).toBe('promoted');
    expect((await http('POST', `/api/checkpoints/${newer}/promote`, OPERATOR, {})).body.checkpoint.status).toBe('promoted');
    expect((await http('POST', `/api/checkpoints/${newer}/loaded`, OPERATOR, { instance: 'fincoll-1' })).status).toBe(200);
    const rollback = await http('POST', '/api/models/good/rollback', OPERATOR, { reason: 'live accuracy fell' });
    expect(rollback.status).toBe(200);
    expect([rollback.body.rolledBack.id, rollback.body.promoted.id]).toEqual([newer, older]);
    const detail = (await http('GET', `/api/checkpoints/${newer}`)).body;
    expect(detail.checkpoint.status).toBe('rolled_back');
    expect(detail.loads).toMatchObject([{ instance: 'fincoll-1' }]);
    expect(detail.history.at(-1)).toMatchObject({ toStatus: 'rolled_back', reason: 'live accuracy fell', actor: 'api (operator)' });

    const bad: [string, string, object | undefined, number, RegExp][] = [
      ['GET', '/api/checkpoints/feed?model=gpt-9', undefined, 400, /unknown model "gpt-9"/],
      ['GET', '/api/checkpoints/feed?after=abc', undefined, 400, /cursor/],
      ['GET', '/api/checkpoints/feed?wait=600', undefined, 400, /wait is at most 30/],
      ['GET', '/api/checkpoints/x1', undefined, 400, /positive integer/],
      ['GET', '/api/checkpoints/999999', undefined, 404, /no checkpoint 999999/],
      ['POST', '/api/models/gpt-9/rollback', {}, 400, /unknown model "gpt-9"/],
      ['POST', `/api/checkpoints/${older}/loaded`, { instance: '' }, 400, /instance/],
    ];
    for (const [method, url, body, status, message] of bad) {
      const res = await http(method, url, method === 'POST' ? OPERATOR : READER, body);
      expect([url, res.status]).toEqual([url, status]);
      expect(`${res.body.message} ${JSON.stringify(res.body.details ?? [])}`).toMatch(message);
    }
    expect((await http('GET', `/api/checkpoints/${older}`)).body.checkpoint.status).toBe('promoted');
  });
});

const python = (await execa('python3', ['--version'], { reject: false })).exitCode === 0;

describe.skipIf(!python)('the example FinColl client (examples/fincoll/poll_feed.py)', () => {
  it("loads what the feed gives, says how fresh it is, and keeps its cursor under .caelum/", async () => {
    workers = await startTestWorkers(fleet, prefix, db.pool, ['host-a']);
    const { checkpointId } = await validationJob((await add('training', { model: 'deployed' })).id);
    const label = (await http('GET', `/api/checkpoints/${checkpointId}`)).body.checkpoint.label as string;
    // Run from a folder of its own, as a newcomer runs it from the repository root.
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'caelum-fincoll-'));
    const client = execa('python3', [path.join(REPO_ROOT, 'examples/fincoll/poll_feed.py'), 'deployed'], {
      cwd,
      env: { CAELUM_URL: base, CAELUM_TOKEN: LOAD_REPORTER, CAELUM_DATA_DIR: '' },
      extendEnv: false,
      reject: false,
    });
    let out = '';
    client.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      const seen = await waitFor('the client to load the checkpoint', () => new RegExp(`loading ${label} from \\S+ \\(validated (\\d+) s ago`).exec(out) ?? undefined);
      expect(Number(seen[1])).toBeLessThan(60);
      const cursorFile = path.join(cwd, '.caelum', 'fincoll-cursor-deployed');
      await waitFor('the cursor file', () => existsSync(cursorFile));
      expect(Number(readFileSync(cursorFile, 'utf8'))).toBeGreaterThan(0);
      expect(readdirSync(cwd)).toEqual(['.caelum']);
      // With FinColl's own token (report-loads), which names it in the record.
      const loads = await waitFor('the load report', async () => {
        const { loads } = (await http('GET', `/api/checkpoints/${checkpointId}`)).body as { loads: unknown[] };
        return loads.length > 0 ? loads : undefined;
      });
      expect(loads).toEqual([{ instance: 'fincoll-1', details: null, at: expect.any(String), by: 'fincoll' }]);
    } finally {
      client.kill();
      await client;
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!python)('the example FinColl client, given a file that changed after validation', () => {
  it('refuses to load it, naming the mismatch, and does not report it loaded', async () => {
    workers = await startTestWorkers(fleet, prefix, db.pool, ['host-a']);
    const { checkpointId } = await validationJob((await add('training', { model: 'deployed' })).id);
    const { label, path: file } = (await http('GET', `/api/checkpoints/${checkpointId}`)).body.checkpoint as { label: string; path: string };
    // A hand changes the registered (read-only) file; the test runs as whoever owns it.
    chmodSync(file, 0o644);
    appendFileSync(file, 'tampered');
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'caelum-fincoll-'));
    const client = execa('python3', [path.join(REPO_ROOT, 'examples/fincoll/poll_feed.py'), 'deployed'], {
      cwd,
      env: { CAELUM_URL: base, CAELUM_TOKEN: LOAD_REPORTER, CAELUM_DATA_DIR: '' },
      extendEnv: false,
      reject: false,
    });
    let err = '';
    let out = '';
    client.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    client.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      await waitFor('the client to refuse the checkpoint', () => err.includes(`refusing ${label}`) || undefined);
      expect(err).toMatch(new RegExp(`refusing ${label} \\(.*\\): its size is \\d+, the feed says \\d+`));
      expect(out).not.toContain(`loading ${label}`);
      expect((await http('GET', `/api/checkpoints/${checkpointId}`)).body.loads).toEqual([]);
    } finally {
      client.kill();
      await client;
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe('registration while Postgres refuses connections', () => {
  it('keeps the job active with its GPU freed, retries, and registers once Postgres is back', async () => {
    const proxy = new TcpProxy('127.0.0.1', Number(new URL(DATABASE_URL).port || 5432));
    await proxy.start();
    const url = new URL(DATABASE_URL);
    url.port = String(proxy.port);
    const pool = createPool(url.toString(), testLogger, { schema: db.schema, max: 2 });
    try {
      workers = await startTestWorkers(fleet, prefix, pool, ['host-a']);
      const training = await add('training', { model: 'good', params: { epochs: 2, epoch_ms: 300 } });
      // The trainer's first progress, not the dequeue: before the child starts the job reads its
      // data lineage from Postgres, and a cut then would hold the GPU instead of freeing it.
      await waitFor('the trainer to report progress', async () => typeof (await getJob(training.id)).progress === 'object' || undefined);
      await proxy.cut();
      // The trainer is done and its GPU is free, but the job is not complete: registration waits.
      await waitFor('the GPU to be free while the job is still active', async () => {
        const [status] = (await listWorkers(api.redis, prefix)).filter((w) => w.host === 'host-a');
        const job = await getJob(training.id);
        return status?.gpus[0]?.jobId === null && status.running.length === 1 && !job.finishedOn && (await job.getState()) === 'active';
      });
      await proxy.restore();
      const done = await finished(training.id);
      expect(await done.getState()).toBe('completed');
      const { registered } = done.returnvalue as { registered: { id: number; created: boolean }[] };
      expect(registered).toHaveLength(1);
      expect((await api.registry.checkpoints.get(registered[0]!.id))!.trainingJobId).toBe(training.id);
      await validationJob(training.id);
    } finally {
      await workers?.close();
      workers = undefined;
      await pool.end();
      await proxy.cut();
    }
  });
});
