// The alert rules against the service: every metric deploy/prometheus/alerts.yml reads is one
// the service exports, every rule has `for:`, a severity and a runbook entry in the README, and
// the fleet gauges the rules read say what Redis, Postgres and the workers' statuses hold. The
// rules' own logic is unit-tested by promtool (deploy/prometheus/alerts.test.yml, in CI).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../src/config/load-fleet.js';
import { feedIntervals } from '../src/api/fleet-gauges.js';
import { enqueue } from '../src/queues/enqueue.js';
import { publishStatus, type WorkerStatus } from '../src/queues/worker-status.js';
import { startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { PrivateRedis } from './helpers/private-redis.js';
import { sample } from './helpers/prometheus-text.js';
import { uniqueName } from './helpers/servers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-alerts-'));
const example = (name: string) => ({ command: ['node', `examples/${name}.mjs`], timeoutSeconds: 60 });
const fleet = parseFleet(
  {
    hosts: { 'host-a': { gpus: [{ index: 0, name: 'Fake GPU', memoryMiB: 8192 }], cpuSlots: 1 }, 'host-b': { gpus: [], cpuSlots: 1 } },
    pools: { alpha: ['host-a'], beta: ['host-b'] },
    models: {
      daily: {
        pool: 'alpha',
        train: example('trainer'),
        validate: example('validator'),
        checkpointDir: path.join(dir, 'daily'),
        freshData: { timeframe: '1d', maxAgeHours: 1 },
        symbols: ['AAPL', 'MSFT'],
      },
    },
    backtest: { pool: 'beta', ...example('backtester') },
    dataSync: { pool: 'beta', ...example('data-syncer') },
    schedules: { 'daily-train': { cron: '* * * * *', timezone: 'UTC', enqueue: { kind: 'training', model: 'daily' } } },
  },
  '(alerts test)',
  REPO_ROOT,
);

const rulesText = readFileSync(path.join(REPO_ROOT, 'deploy/prometheus/alerts.yml'), 'utf8');
const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

let db: TestSchema;
let redisServer: PrivateRedis;
let api: ApiHarness;
let admin: Redis;
beforeAll(async () => {
  db = await createTestSchema('alerts');
  // A Redis of the test's own, so that its persistence and eviction settings can be changed.
  redisServer = await PrivateRedis.start(dir, { appendOnly: false });
  api = await startApi({ fleet, schema: db.schema, redisUrl: redisServer.url, prefix: uniqueName('alerts') });
  admin = new Redis(redisServer.url);
}, 30_000);
afterAll(async () => {
  admin?.disconnect();
  await api?.close();
  await redisServer?.kill9();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const scrape = async () => {
  const res = await api.app.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  return res.body;
};

describe('the alert rules', () => {
  const rules = rulesText.split(/\n\s+- alert: /).slice(1).map((block) => ({ name: block.split('\n')[0]!.trim(), block }));

  it('read only metrics the service exports', () => {
    expect(rules.length).toBeGreaterThanOrEqual(10);
    const exported = new Set(api.metrics.registry.getMetricsAsArray().map((m) => m.name));
    // The metric names in each rule's expression (between `expr:` and `for:`).
    const exprs = rules.map(({ block }) => block.slice(block.indexOf('expr:'), block.search(/\n\s+for:/)));
    const used = new Set(exprs.flatMap((e) => e.match(/\bcaelum_[a-z_]+/g) ?? []));
    expect(used.size).toBeGreaterThanOrEqual(12);
    expect([...used].filter((name) => !exported.has(name))).toEqual([]);
  });

  it('each wait with for:, carry a severity, and link a runbook entry of the README', () => {
    for (const { name, block } of rules) {
      expect(block, name).toMatch(/\n\s+for: \d+m\n/);
      expect(block, name).toMatch(/\n\s+severity: (warning|critical)\n/);
      const anchor = /runbook_url: README\.md#([a-z0-9-]+)/.exec(block)?.[1];
      expect(anchor, name).toBe(name.toLowerCase());
      // A heading `#### <AlertName>` is the anchor GitHub makes of it.
      expect(readme, name).toContain(`\n#### ${name}\n`);
    }
  });
});

describe('the fleet gauges', () => {
  it('say whether Redis keeps its data and evicts', async () => {
    let text = await scrape();
    expect(sample(text, 'caelum_redis_persistence', { kind: 'aof' })).toBe(0);
    expect(sample(text, 'caelum_redis_persistence', { kind: 'rdb' })).toBe(0);
    expect(sample(text, 'caelum_redis_maxmemory_policy', { policy: 'noeviction' })).toBe(1);
    await admin.config('SET', 'appendonly', 'yes');
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    text = await scrape();
    expect(sample(text, 'caelum_redis_persistence', { kind: 'aof' })).toBe(1);
    expect(sample(text, 'caelum_redis_maxmemory_policy', { policy: 'allkeys-lru' })).toBe(1);
    expect(sample(text, 'caelum_redis_maxmemory_policy', { policy: 'noeviction' })).toBeUndefined();
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
  });

  it('count a host with no live worker as 0, and GPU jobs that wait while a live host has GPUs free', async () => {
    let text = await scrape();
    expect(sample(text, 'caelum_workers_live', { host: 'host-a' })).toBe(0);
    expect(sample(text, 'caelum_workers_live', { host: 'host-b' })).toBe(0);
    expect(sample(text, 'caelum_gpu_jobs_waiting_with_free_gpus', { pool: 'alpha' })).toBe(0);
    const training = await enqueue({ fleet, queues: api.queues }, 'training', { model: 'daily' }, { reason: 'api', by: 'alerts test', at: new Date().toISOString() });
    // No worker: the job waits, but no GPU is free either.
    text = await scrape();
    expect(sample(text, 'caelum_gpu_jobs_waiting_with_free_gpus', { pool: 'alpha' })).toBe(0);
    // A worker of host-a that heartbeats with its GPU free but does not take the job (a hung dispatch loop).
    const status: WorkerStatus = {
      host: 'host-a', instance: 'hung', pid: process.pid, version: 'test', startedAt: new Date().toISOString(), at: new Date().toISOString(),
      gpuSource: 'config', gpus: [{ index: 0, name: 'Fake GPU', memoryMiB: 8192, jobId: null }], cpuSlots: { total: 1, used: 0 }, queues: ['training-daily'], running: [],
    };
    await publishStatus(api.redis, api.prefix, status, 60_000);
    text = await scrape();
    expect(sample(text, 'caelum_workers_live', { host: 'host-a' })).toBe(1);
    expect(sample(text, 'caelum_gpu_jobs_waiting_with_free_gpus', { pool: 'alpha' })).toBe(1);
    // A GPU held for its health does not count as free.
    await publishStatus(api.redis, api.prefix, { ...status, gpus: [{ ...status.gpus[0]!, unhealthy: { reasons: ['too hot'], since: new Date().toISOString() } }] }, 60_000);
    text = await scrape();
    expect(sample(text, 'caelum_gpu_jobs_waiting_with_free_gpus', { pool: 'alpha' })).toBe(0);
    await api.queues.get('training-daily')!.queue.remove(training.id);
  });

  it('give each wanted market-data key its last sync (0: never) beside the age its model allows', async () => {
    const { marketData } = api.registry;
    const fence = await marketData.nextFence();
    await marketData.recordGrant('data-sync:AAPL:1d', fence);
    expect((await marketData.recordSync({ symbol: 'AAPL', timeframe: '1d', fence, jobId: 'data-sync.alerts', source: 'test', rows: 1, from: null, to: null })).written).toBe(true);
    const [synced] = await marketData.latest(['AAPL'], '1d');
    const text = await scrape();
    expect(sample(text, 'caelum_data_sync_last_success_timestamp_seconds', { model: 'daily', symbol: 'AAPL', timeframe: '1d' })).toBe(Date.parse(synced!.syncedAt) / 1000);
    expect(sample(text, 'caelum_data_sync_last_success_timestamp_seconds', { model: 'daily', symbol: 'MSFT', timeframe: '1d' })).toBe(0);
    expect(sample(text, 'caelum_data_sync_max_age_seconds', { model: 'daily', timeframe: '1d' })).toBe(3600);
  });

  it('show a due fire no scheduler recorded, and how long the feed has waited against what the schedule implies', async () => {
    const { schedules } = api.registry;
    let text = await scrape();
    // No scheduler has known the schedule yet: nothing is due, and its feed is not watched.
    expect(sample(text, 'caelum_schedule_due_timestamp_seconds', { schedule: 'daily-train' })).toBeUndefined();
    expect(sample(text, 'caelum_feed_last_advance_timestamp_seconds', { model: 'daily' })).toBeUndefined();
    // Every minute, plus a training's and a validation's timeout.
    expect(sample(text, 'caelum_feed_max_interval_seconds', { model: 'daily' })).toBe(60 + 60 + 60);
    expect(feedIntervals(fleet).get('daily')).toBe(180);

    // A scheduler first knew it five minutes ago, and none has run since.
    await schedules.ensure('daily-train');
    await db.pool.query("update schedule_state set known_since = now() - interval '5 minutes' where schedule = 'daily-train'");
    const knownSince = Date.parse((await schedules.state('daily-train'))!.knownSince) / 1000;
    text = await scrape();
    const due = sample(text, 'caelum_schedule_due_timestamp_seconds', { schedule: 'daily-train' })!;
    expect(due % 60).toBe(0);
    expect(due).toBeGreaterThan(knownSince);
    expect(due).toBeLessThanOrEqual(Date.now() / 1000);
    expect(sample(text, 'caelum_schedule_last_fire_timestamp_seconds', { schedule: 'daily-train' })).toBe(0);
    expect(sample(text, 'caelum_feed_last_advance_timestamp_seconds', { model: 'daily' })).toBeCloseTo(knownSince, 3);

    // Paused: not due, and the feed is not expected to advance.
    await schedules.pause('daily-train', 'alerts test', null);
    text = await scrape();
    expect(sample(text, 'caelum_schedule_due_timestamp_seconds', { schedule: 'daily-train' })).toBeUndefined();
    expect(sample(text, 'caelum_feed_last_advance_timestamp_seconds', { model: 'daily' })).toBeUndefined();
  });
});
