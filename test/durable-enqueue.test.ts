// Idempotent enqueues (Idempotency-Key) and durable ones (CAELUM_REDIS_MIN_REPLICAS): a retry
// returns the first job, never a second; with a replica required, nothing is acknowledged (201,
// or a fire recorded as enqueued) before Redis's WAIT says the replica has it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeFire, fireSchedule } from '../src/scheduler/fire.js';
import { asAlice, asEnqueuer, asReader, countAllJobs, ENQUEUER, startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { testFleet } from './helpers/fleet.js';
import { testLogger } from './helpers/logger.js';
import { PrivateRedis } from './helpers/private-redis.js';
import { BIN } from './helpers/service-process.js';
import { waitFor } from './helpers/wait.js';

const post = (h: ApiHarness, body: object, headers: Record<string, string>) =>
  h.app.inject({ method: 'POST', url: '/api/jobs/training', payload: body, headers: { ...asEnqueuer, ...headers } });

describe('Idempotency-Key', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApi();
  });
  afterAll(async () => {
    await h.close();
  });

  it('a retry returns the first job (200, replayed), never a second, however many arrive at once', async () => {
    const first = await post(h, { model: 'model-a' }, { 'idempotency-key': 'retrain-2026-11-30' });
    expect(first.statusCode).toBe(201);
    const again = await post(h, { model: 'model-a' }, { 'idempotency-key': 'retrain-2026-11-30' });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ ...first.json(), state: 'waiting', replayed: true });
    const burst = await Promise.all(Array.from({ length: 8 }, () => post(h, { model: 'model-b' }, { 'idempotency-key': 'burst-1' })));
    expect(new Set(burst.map((r) => r.json().id)).size).toBe(1);
    expect(burst.every((r) => [200, 201].includes(r.statusCode))).toBe(true);
    expect(await countAllJobs(h)).toBe(2);
  });

  it("scopes keys to the token, refuses a key reused for another request, and a bad key, adding nothing", async () => {
    const before = await countAllJobs(h);
    const mine = await post(h, { model: 'model-a', params: { epochs: 2 } }, { 'idempotency-key': 'shared-key' });
    const theirs = await post(h, { model: 'model-a', params: { epochs: 2 } }, { ...asAlice, 'idempotency-key': 'shared-key' });
    expect([mine.statusCode, theirs.statusCode]).toEqual([201, 201]);
    expect(theirs.json().id).not.toBe(mine.json().id);
    const reused = await post(h, { model: 'model-a', params: { epochs: 3 } }, { 'idempotency-key': 'shared-key' });
    expect(reused.statusCode).toBe(409);
    expect(reused.json().message).toBe(`Idempotency-Key "shared-key" was used for a different request (job ${mine.json().id}); send a new key with a new request`);
    const bad = await post(h, { model: 'model-a' }, { 'idempotency-key': 'has spaces' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().details).toEqual([{ path: 'Idempotency-Key', message: 'must be 1-255 printable characters without spaces (a UUID, say)' }]);
    expect(await countAllJobs(h)).toBe(before + 2);
  });
});

describe('with a replica required (CAELUM_REDIS_MIN_REPLICAS=1)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-durable-'));
  const fleet = testFleet({ schedules: { nightly: { cron: '0 3 * * *', timezone: 'UTC', enqueue: { kind: 'training', model: 'model-b' } } } });
  let primary: PrivateRedis;
  let replica: PrivateRedis;
  let db: TestSchema;
  let h: ApiHarness;
  let admin: Redis;

  /** Resolves once the primary sees its replica online and caught up. */
  const replicaOnline = () =>
    waitFor('the replica to be online', async () => /slave0:.*state=online/.test(await admin.info('replication')), { timeoutMs: 20_000 });

  beforeAll(async () => {
    primary = await PrivateRedis.start(mkdtempSync(path.join(dir, 'primary-')), { appendOnly: false });
    replica = await PrivateRedis.start(mkdtempSync(path.join(dir, 'replica-')), { appendOnly: false, args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    admin = new Redis(primary.url);
    await replicaOnline();
    db = await createTestSchema('durable');
    h = await startApi({ fleet, redisUrl: primary.url, schema: db.schema, durability: { replicas: 1, timeoutMs: 500 } });
  });
  afterAll(async () => {
    await h.close();
    await db.drop();
    admin.disconnect();
    await replica.kill9();
    await primary.kill9();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 201 once the replica has the job, 503 while none confirms, and the retry returns the one job', async () => {
    const acked = await post(h, { model: 'model-a' }, { 'idempotency-key': 'first' });
    expect(acked.statusCode).toBe(201);

    await replica.kill9();
    await waitFor('the primary to see the replica gone', async () => /connected_slaves:0/.test(await admin.info('replication')));
    const refused = await post(h, { model: 'model-b' }, { 'idempotency-key': 'during-outage' });
    expect(refused.statusCode).toBe(503);
    expect(refused.json()).toEqual({
      error: 'unavailable',
      message: 'the enqueue reached 0 of the 1 Redis replica(s) it needs within 500 ms, so it is not acknowledged; retry with the same Idempotency-Key',
    });
    // The primary has the job, unacknowledged: a failover now could lose it, and the caller knows.
    expect(await countAllJobs(h)).toBe(2);

    await replica.restart();
    await replicaOnline();
    const retried = await post(h, { model: 'model-b' }, { 'idempotency-key': 'during-outage' });
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ queue: 'training-model-b', state: 'waiting', replayed: true });
    expect(await countAllJobs(h)).toBe(2);
  });

  it('the CLI retries a 503 with the same key until the replica is back, adding one job', async () => {
    const base = await h.app.listen({ port: 0, host: '127.0.0.1' });
    await replica.kill9();
    await waitFor('the primary to see the replica gone', async () => /connected_slaves:0/.test(await admin.info('replication')));
    const before = await countAllJobs(h);
    const cli = execa('node', [BIN, 'enqueue', 'data-sync', '--symbol', 'QQQ', '--timeframe', '1h'], {
      env: { CAELUM_API_URL: base, CAELUM_API_TOKEN: ENQUEUER, LOG_LEVEL: 'warn' },
      reject: false,
    });
    let err = '';
    cli.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    await waitFor('the CLI to be told 503 twice', () => (err.match(/trying again/g)?.length ?? 0) >= 2, { timeoutMs: 20_000 });
    await replica.restart();
    const done = await cli;
    expect(done.exitCode).toBe(0);
    expect(err).toMatch(/^503 the enqueue reached 0 of the 1 Redis replica\(s\) it needs within 500 ms, so it is not acknowledged; retry with the same Idempotency-Key; trying again in [\d.]+ s/m);
    const [id, state] = done.stdout.trim().split(/\s+/);
    expect(state).toBe('waiting');
    expect((await h.app.inject({ method: 'GET', url: `/api/jobs/${id}`, headers: asReader })).json().state).toBe('waiting');
    expect(await countAllJobs(h)).toBe(before + 1);
  });

  it('the scheduler records a fire as enqueued only once the replica has its job; a repair completes it under the same id', async () => {
    await replicaOnline();
    const schedule = fleet.schedules.nightly!;
    const deps = { fleet, queues: h.queues, schedules: h.registry.schedules, logger: testLogger };
    await replica.kill9();
    await waitFor('the primary to see the replica gone', async () => /connected_slaves:0/.test(await admin.info('replication')));
    const scheduledFor = new Date('2026-11-30T03:00:00Z');
    const failed = await fireSchedule(deps, 'nightly', schedule, { scheduledFor, source: 'cron', manual: false, actor: 'scheduler' });
    expect(failed).toMatchObject({ claimed: true, outcome: 'failed', reason: 'Redis is unreachable; the fire is left for repair' });
    const history = async () => (await h.registry.schedules.history('nightly', 10)).map((f) => ({ outcome: f.outcome, jobIds: f.jobIds }));
    // Claimed and not settled: not "enqueued", so nobody was told a job exists.
    expect(await history()).toEqual([{ outcome: 'claimed', jobIds: [] }]);

    await replica.restart();
    await replicaOnline();
    const repaired = await completeFire(deps, 'nightly', schedule, failed.fire!, { repair: true });
    expect(repaired.outcome).toBe('enqueued');
    const jobs = await h.queues.get('training-model-b')!.queue.getJobs(['waiting']);
    expect(jobs.filter((j) => j.id === repaired.jobIds[0])).toHaveLength(1);
    expect(await history()).toEqual([{ outcome: 'enqueued', jobIds: repaired.jobIds }]);
  });
});
