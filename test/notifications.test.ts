// Notifications end to end: real workers run real jobs (and one real worker process is killed
// with kill -9), the real checkpoint lifecycle and scheduler record what happens, two notifiers
// on the same prefix read it and deliver through the real `notifications` queue to webhook
// receivers on ports of their own. One receiver fails every event twice before accepting it,
// one refuses with 403, and each receiver verifies every signature.
// Counted: per event id, deliveries each receiver accepted (must be exactly one), requests to the
// flaky one (three: two failures, then the delivery), requests to the refusing one (one: a 403
// is not retried), and deliveries whose signature did not verify (none).
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveNotificationSecrets } from '../src/config/notifications-schema.js';
import { createMetrics } from '../src/metrics.js';
import { Notifier } from '../src/notifications/notifier.js';
import { signatureHeader, verifySignature } from '../src/notifications/signature.js';
import { enqueue } from '../src/queues/enqueue.js';
import { listWorkers } from '../src/queues/worker-status.js';
import { NOTIFICATIONS_QUEUE } from '../src/queues/redis-names.js';
import { closeRedis, createRedis } from '../src/redis.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import type { RunningWorkers } from '../src/workers/start-workers.js';
import { asOperator } from './helpers/api.js';
import { fleetFileHarness } from './helpers/fleet-file.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { testLogger } from './helpers/logger.js';
import { REDIS_URL } from './helpers/servers.js';
import { waitFor } from './helpers/wait.js';
import { WebhookReceiver } from './helpers/webhook-receiver.js';
import { startTestWorkers } from './helpers/workers.js';

const STEADY_SECRET = 'steady-receiver-secret-0123456789';
const FLAKY_SECRET = 'flaky-receiver-secret-0123456789';
const steady = new WebhookReceiver({ secret: STEADY_SECRET });
const flaky = new WebhookReceiver({ secret: FLAKY_SECRET, failFirst: 2 });
const refusing = new WebhookReceiver({ secret: STEADY_SECRET, status: 403 });
beforeAll(() => Promise.all([steady.start(), flaky.start(), refusing.start()]));

// Paths in the config file are relative to it, and it lives in the sandbox: name the programs absolutely.
const program = (file: string) => path.join(REPO_ROOT, file);
const example = (name: string, extra: object = {}) => ({ command: ['node', program(`examples/${name}.mjs`)], timeoutSeconds: 60, attempts: 1, ...extra });
const train = example('trainer', { command: ['node', program('examples/trainer.mjs'), '--epochs', '1', '--epoch-ms', '50'] });
/** Fresh for 2 s: the test syncs it and waits for it to go stale. */
const FRESH_HOURS = 2 / 3600;

const h = fleetFileHarness('notify', (sandbox) => ({
  hosts: {
    'host-a': { gpus: [0, 1].map((index) => ({ index, name: 'Fake GPU', memoryMiB: 8192 })), cpuSlots: 2 },
    // The host of the worker process the test kills; it serves no queue.
    'host-z': { gpus: [], cpuSlots: 1 },
  },
  pools: { alpha: ['host-a'], spare: ['host-z'] },
  models: {
    good: { pool: 'alpha', train, validate: example('validator'), thresholds: { val_accuracy: { min: 0.5 } }, checkpointDir: path.join(sandbox, 'good') },
    picky: { pool: 'alpha', train, validate: example('validator'), thresholds: { val_accuracy: { min: 0.999 } }, checkpointDir: path.join(sandbox, 'picky') },
    fresh: { pool: 'alpha', train, validate: example('validator'), checkpointDir: path.join(sandbox, 'fresh'), freshData: { timeframe: '1d', maxAgeHours: FRESH_HOURS }, symbols: ['AAPL'] },
  },
  backtest: { pool: 'alpha', ...example('backtester') },
  // BAD fails every attempt: two attempts, then it has failed for good.
  dataSync: { pool: 'alpha', ...example('data-syncer', { command: ['node', program('test/fixtures/failing-syncer.mjs'), '--fail', 'BAD'], attempts: 2, backoffSeconds: 0.05 }) },
  schedules: {
    // Its symbol fails the data-sync payload's schema, so every fire fails to enqueue.
    broken: { timezone: 'UTC', enqueue: { kind: 'data-sync', symbols: ['not a symbol'], timeframe: '1d' } },
    minutely: { cron: '* * * * *', timezone: 'UTC', enqueue: { kind: 'data-sync', symbols: ['MSFT'], timeframe: '1d' }, catchUp: { windowSeconds: 30, mode: 'latest' } },
  },
  notifications: {
    targets: {
      steady: { url: steady.url, secret: STEADY_SECRET },
      flaky: { url: flaky.url, secretEnv: 'FLAKY_HOOK_SECRET', events: ['*'] },
      refusing: { url: refusing.url, secret: STEADY_SECRET, events: ['worker.gone'] },
    },
    attempts: 5,
    backoffSeconds: 0.05,
    checkEverySeconds: 0.2,
  },
}));

const nvidiaSmi = path.join(h.sandbox, 'nvidia-smi');
const gpuState = path.join(h.sandbox, 'gpus.json');
const notifiers: Notifier[] = [];
const connections: Redis[] = [];
let workers: RunningWorkers;

beforeAll(async () => {
  // GPU 1 has an uncorrectable ECC error from the start; GPU 0 is well and runs the trainings.
  writeFileSync(gpuState, JSON.stringify({ gpus: [{ index: 0 }, { index: 1, 'ecc.errors.uncorrected.volatile.total': 1 }] }));
  writeFileSync(nvidiaSmi, `#!/bin/sh\nFAKE_NVIDIA_SMI_GPUS='${gpuState}' exec '${process.execPath}' '${path.join(REPO_ROOT, 'test/fixtures/fake-nvidia-smi.mjs')}' "$@"\n`);
  chmodSync(nvidiaSmi, 0o755);
  const secrets = resolveNotificationSecrets(h.fleet.notifications, { FLAKY_HOOK_SECRET: FLAKY_SECRET }, h.fleet.source);
  // Two notifiers on one prefix, as two scheduler processes would run.
  for (let i = 0; i < 2; i++) {
    const workerConnection = createRedis(REDIS_URL, 'worker', testLogger);
    connections.push(workerConnection);
    notifiers.push(
      Notifier.start({
        fleet: h.fleet,
        queues: h.api.queues,
        registry: h.api.registry,
        redis: h.api.redis,
        workerConnection,
        prefix: h.prefix,
        secrets,
        metrics: createMetrics({ defaults: false }),
        logger: testLogger,
        version: 'test',
      }),
    );
  }
  workers = await startTestWorkers(h.fleet, h.prefix, h.db.pool, ['host-a'], { gpuCheckMs: 200, heartbeatMs: 200 }, nvidiaSmi, { dataDir: h.dataDir });
}, 30_000);

afterAll(async () => {
  await workers?.close();
  await Promise.all(notifiers.map((n) => n.close()));
  for (const c of connections) await closeRedis(c);
  await Promise.all([steady.close(), flaky.close(), refusing.close()]);
});

/** The one delivery of an event that `receiver` accepted, found by a predicate on its body. */
const delivered = (receiver: WebhookReceiver, event: string, match: (b: WebhookReceiver['requests'][number]['body']) => boolean = () => true) =>
  waitFor(`${event} at ${receiver === steady ? 'the steady' : 'the flaky'} receiver`, () => receiver.accepted(event).find((r) => match(r.body))?.body, { timeoutMs: 30_000 });

const enqueueJob = (kind: 'training' | 'data-sync', payload: object) =>
  enqueue({ fleet: h.fleet, queues: h.api.queues }, kind, payload, { reason: 'api', by: 'notifications test', at: new Date().toISOString() });

async function finished(queue: string, id: string): Promise<Job> {
  const q = h.api.queues.get(queue)!.queue;
  return waitFor(`job ${id} to finish`, async () => {
    const job = await q.getJob(id);
    return job?.finishedOn ? job : undefined;
  }, { timeoutMs: 30_000 });
}

describe('signatures', () => {
  it('verify the body they were made for, with the secret, within the tolerance', () => {
    const body = JSON.stringify({ id: 'x', text: 'hello' });
    const now = 1_700_000_000;
    const header = signatureHeader(STEADY_SECRET, body, now);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifySignature(header, body, STEADY_SECRET, now + 10)).toBe(true);
    expect(verifySignature(header, body.replace('hello', 'hellO'), STEADY_SECRET, now)).toBe(false);
    expect(verifySignature(header, body, FLAKY_SECRET, now)).toBe(false);
    expect(verifySignature(header, body, STEADY_SECRET, now + 301)).toBe(false);
    expect(verifySignature(undefined, body, STEADY_SECRET, now)).toBe(false);
    expect(verifySignature('t=1700000000,v1=zz', body, STEADY_SECRET, now)).toBe(false);
  });
});

describe('events', () => {
  it('a GPU failing its health check', async () => {
    const b = await delivered(steady, 'gpu.unhealthy', (x) => x.details.host === 'host-a');
    expect(b.details).toMatchObject({ gpu: 1, reasons: ['1 uncorrectable ECC error since the driver loaded'] });
    expect(b.text).toContain('GPU 1');
    await delivered(flaky, 'gpu.unhealthy');
  });

  it('a job that failed for good, after its last attempt', async () => {
    const job = await enqueueJob('data-sync', { symbol: 'BAD', timeframe: '1d' });
    expect((await finished('data-sync', job.id)).failedReason).toBeTruthy();
    const b = await delivered(steady, 'job.failed', (x) => x.details.jobId === job.id);
    expect(b.details).toMatchObject({ kind: 'data-sync', attempts: 2 });
    expect(b.text).toContain(job.id);
    expect(b.id).toMatch(new RegExp(`^job\\.failed:${job.id.replace('.', '\\.')}:\\d+$`));
    await delivered(flaky, 'job.failed', (x) => x.details.jobId === job.id);
  });

  it('a checkpoint validated, rejected, promoted and rolled back', async () => {
    const trainOnce = async (model: string) => {
      const job = await enqueueJob('training', { model });
      expect((await finished(`training-${model}`, job.id)).failedReason).toBeFalsy();
      return waitFor(`${model}'s checkpoint to be decided`, async () => {
        const c = (await h.api.registry.checkpoints.list({ model, limit: 10, offset: 0 })).checkpoints.find((x) => x.trainingJobId === job.id);
        return c && (c.status === 'validated' || c.status === 'rejected') ? c : undefined;
      }, { timeoutMs: 30_000 });
    };
    const first = await trainOnce('good');
    const second = await trainOnce('good');
    const rejected = await trainOnce('picky');
    expect([first.status, second.status, rejected.status]).toEqual(['validated', 'validated', 'rejected']);
    for (const c of [first, second]) {
      const res = await h.api.app.inject({ method: 'POST', url: `/api/checkpoints/${c.id}/promote`, headers: asOperator, payload: {} });
      expect(res.statusCode).toBe(200);
    }
    const back = await h.api.app.inject({ method: 'POST', url: '/api/models/good/rollback', headers: asOperator, payload: { reason: 'worse in production' } });
    expect(back.statusCode).toBe(200);

    for (const c of [first, second]) await delivered(steady, 'checkpoint.validated', (x) => x.details.checkpointId === c.id);
    const no = await delivered(steady, 'checkpoint.rejected', (x) => x.details.checkpointId === rejected.id);
    expect(no.text).toMatch(/rejected: .*val_accuracy/);
    // The first is promoted twice (by hand, then by the rollback): two events.
    await waitFor('two promotions of the first', () => steady.accepted('checkpoint.promoted').filter((r) => r.body.details.checkpointId === first.id).length === 2);
    await delivered(steady, 'checkpoint.promoted', (x) => x.details.checkpointId === second.id);
    const rb = await delivered(steady, 'checkpoint.rolled_back', (x) => x.details.checkpointId === second.id);
    expect(rb.text).toContain(`rolled back to #${first.id}`);
    expect(rb.text).toContain('worse in production');
    await delivered(flaky, 'checkpoint.rolled_back', (x) => x.details.checkpointId === second.id);
  }, 60_000);

  it('a schedule fire that failed, and fires missed while no scheduler ran', async () => {
    const res = await h.api.app.inject({ method: 'POST', url: '/api/schedules/broken/trigger', headers: asOperator, payload: {} });
    expect(res.statusCode).toBe(503);
    const failed = await delivered(steady, 'schedule.failed', (x) => x.details.schedule === 'broken');
    expect(failed.text).toContain('failed to enqueue');

    // A scheduler whose clock says ten minutes have passed since the schedule was first known:
    // it catches up on the latest fire and records the other nine as missed.
    const scheduler = new Scheduler({
      fleet: h.fleet,
      queues: h.api.queues,
      schedules: h.api.registry.schedules,
      marketData: h.api.registry.marketData,
      logger: testLogger,
      now: () => Date.now() + 10 * 60_000,
    });
    try {
      await scheduler.start();
    } finally {
      await scheduler.close();
    }
    const missed = await delivered(steady, 'schedule.missed', (x) => x.details.schedule === 'minutely');
    expect((missed.details.missed as string[]).length).toBeGreaterThanOrEqual(8);
    await delivered(flaky, 'schedule.missed');
  });

  it('a data-sync key older than its model allows: never synced, then synced and gone stale', async () => {
    const never = await delivered(steady, 'data.stale', (x) => x.details.model === 'fresh' && x.details.lastSyncedAt === null);
    expect(never.text).toContain('AAPL 1d has never been synced');
    const sync = await enqueueJob('data-sync', { symbol: 'AAPL', timeframe: '1d' });
    expect((await finished('data-sync', sync.id)).failedReason).toBeFalsy();
    const stale = await delivered(steady, 'data.stale', (x) => x.details.model === 'fresh' && x.details.lastSyncedAt !== null);
    const [record] = await h.api.registry.marketData.latest(['AAPL'], '1d');
    expect(stale.details.lastSyncedAt).toBe(record!.syncedAt);
  });

  it('a worker gone without shutting down (kill -9)', async () => {
    const child = h.workerProcess('host-z');
    const live = await waitFor('the worker process to heartbeat', async () => (await listWorkers(h.api.redis, h.prefix)).find((w) => w.host === 'host-z'), { timeoutMs: 30_000 });
    child.kill('SIGKILL');
    await child;
    const gone = await delivered(steady, 'worker.gone', (x) => x.details.instance === live.instance);
    expect(gone.details.host).toBe('host-z');
    await delivered(flaky, 'worker.gone', (x) => x.details.instance === live.instance);
    await waitFor('the refusing receiver to be asked', () => refusing.requests.some((r) => r.body.details.instance === live.instance));
  }, 40_000);
});

describe('delivery', () => {
  it('every event reached each target exactly once, through failures, repeated reads and two notifiers', async () => {
    // Two more passes of both notifiers re-read every source over its overlap: nothing new may come of it.
    for (const n of notifiers) await n.watch.pass();
    for (const n of notifiers) await n.watch.pass();
    const queue = notifiers[0]!.outbox.queue;
    await waitFor('every delivery to settle', async () => {
      const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      return Object.values(c).every((n) => n === 0);
    });
    expect(queue.name).toBe(NOTIFICATIONS_QUEUE);

    const keys = new Set(steady.requests.map((r) => r.key));
    expect(keys.size).toBeGreaterThanOrEqual(12);
    const events = new Set(steady.requests.map((r) => r.event));
    expect([...events].sort()).toEqual(
      ['checkpoint.promoted', 'checkpoint.rejected', 'checkpoint.rolled_back', 'checkpoint.validated', 'data.stale', 'gpu.unhealthy', 'job.failed', 'schedule.failed', 'schedule.missed', 'worker.gone'],
    );
    const counts = (receiver: WebhookReceiver, accepted: boolean) => {
      const byKey = new Map<string, number>();
      for (const r of receiver.requests) if (!accepted || r.status === 200) byKey.set(r.key, (byKey.get(r.key) ?? 0) + 1);
      return byKey;
    };
    for (const receiver of [steady, flaky, refusing]) expect(receiver.requests.filter((r) => !r.verified)).toEqual([]);
    // Exactly once at each receiver that accepts, for every event the steady one got.
    expect([...counts(steady, true).values()].filter((n) => n !== 1)).toEqual([]);
    expect([...counts(flaky, true).keys()].sort()).toEqual([...keys].sort());
    expect([...counts(flaky, true).values()].filter((n) => n !== 1)).toEqual([]);
    // The flaky receiver answered 500 twice before it accepted each one: three requests each.
    expect([...counts(flaky, false).values()].filter((n) => n !== 3)).toEqual([]);
    // A 403 is not retried: one request per event, and the refusing target wants only worker.gone.
    expect(refusing.requests.length).toBeGreaterThan(0);
    expect(refusing.requests.filter((r) => r.event !== 'worker.gone')).toEqual([]);
    expect([...counts(refusing, false).values()].filter((n) => n !== 1)).toEqual([]);
    const refused = await queue.getJobs(['failed']);
    expect(refused.length).toBe(refusing.requests.length);
    for (const j of refused) expect(j.attemptsMade).toBe(1);
  }, 40_000);
});
