// Redis Cluster, as far as it goes. A three-shard Redis Cluster of this test's own; the service
// with CAELUM_PREFIX={caelum}, a hash tag, so that every key it makes (BullMQ's, the locks', the
// worker statuses') lands in the one slot of "caelum", and with REDIS_URL naming the shard that
// owns that slot. The api, a scheduler and two workers run real work on it: nothing is refused
// (no MOVED, no CROSSSLOT), every key is in that slot, and the other two shards hold nothing.
// That is the finding: the service runs on a Cluster, on one shard of it. Without the tag the
// queues' keys scatter over the shards and a connection meets MOVED.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../src/config/load-fleet.js';
import { queueSpecs } from '../src/queues/placement.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { PrivateRedis } from './helpers/private-redis.js';
import { DATABASE_URL, uniqueName } from './helpers/servers.js';
import { apiCaller, startStack, stackEnv, type ServiceProcess } from './helpers/service-process.js';
import { dropSchema } from './helpers/db.js';
import { waitFor } from './helpers/wait.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-cluster-'));
const schema = uniqueName('cluster');
const TOKEN = 'operator-token-of-the-cluster-test';
const CONFIG = path.join(REPO_ROOT, 'test/fixtures/production.config.mts');
let shards: PrivateRedis[] = [];
const clients: Redis[] = [];
const services: ServiceProcess[] = [];
let owner: number;

const client = (port: number) => {
  const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  shards = await Promise.all(
    [0, 1, 2].map((i) => {
      const nodeDir = path.join(dir, `shard-${i}`);
      mkdirSync(nodeDir);
      return PrivateRedis.start(nodeDir, { appendOnly: false, args: ['--cluster-enabled', 'yes', '--cluster-config-file', path.join(nodeDir, 'nodes.conf')] });
    }),
  );
  const created = await execa('redis-cli', ['--cluster', 'create', ...shards.map((s) => `127.0.0.1:${s.port}`), '--cluster-yes'], { reject: false });
  if (created.exitCode !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}\n${created.stderr}`);
  for (const s of shards) await waitFor(`shard ${s.port} to see the cluster ok`, async () => /cluster_state:ok/.test((await client(s.port).call('CLUSTER', 'INFO')) as string), { timeoutMs: 30_000 });
  const slot = Number(await clients[0]!.call('CLUSTER', 'KEYSLOT', '{caelum}'));
  const ranges = (await clients[0]!.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  owner = ranges.find(([from, to]) => from <= slot && slot <= to)![2][1];
}, 60_000);
afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  for (const c of clients) c.disconnect();
  await Promise.all(shards.map((s) => s.kill9()));
  await dropSchema(schema);
  rmSync(dir, { recursive: true, force: true });
});

describe('Redis Cluster with CAELUM_PREFIX={caelum}', () => {
  it('runs every process on the shard that owns the tag, every key in its one slot, nothing refused', async () => {
    const env = stackEnv(mkdtempSync(path.join(dir, 'data-')), {
      REDIS_URL: `redis://127.0.0.1:${owner}`,
      DATABASE_URL,
      CAELUM_DB_SCHEMA: schema,
      CAELUM_PREFIX: '{caelum}',
      CAELUM_API_TOKEN: TOKEN,
    });
    const api = await startStack(env, services);
    const call = apiCaller(api.url, TOKEN);
    const training = await call('POST', '/api/jobs/training', { model: 'small' });
    expect(training.status).toBe(201);
    const wide = await call('POST', '/api/jobs/training', { model: 'wide', params: { epochs: 2, epoch_ms: 100 } });
    const checkpoint = await waitFor('the retrain on fresh data, and its validation', async () => {
      const job = await call('GET', `/api/jobs/${training.body.id}`);
      if (job.body.state === 'failed') throw new Error(`training failed: ${job.body.failureReason}`);
      const c = (await call('GET', '/api/checkpoints?model=small')).body.checkpoints?.[0];
      return c && ['validated', 'rejected'].includes(c.status) ? c : undefined;
    }, { timeoutMs: 60_000 });
    expect(checkpoint.trainingJobId).toBe(training.body.id);
    await waitFor('the other training', async () => (await call('GET', `/api/jobs/${wide.body.id}`)).body.state === 'completed', { timeoutMs: 30_000 });
    expect((await call('GET', '/api/schedules/sync-every-2s')).body.history.some((f: { outcome: string }) => f.outcome === 'enqueued')).toBe(true);
    expect((await call('GET', '/api/workers')).body.workers).toHaveLength(2);
    const all = services.splice(0);
    const exits = await Promise.all(all.map((s) => s.stop()));
    expect(exits).toEqual([0, 0, 0, 0]);
    const logs = all.map((s) => s.output()).join('\n');
    expect(logs).toMatch(/"caelum-scheduler is up"/);
    expect(logs).not.toMatch(/MOVED|CROSSSLOT|ASK /);

    // Every key on the owning shard, all in the tag's slot; the other shards empty.
    const home = client(owner);
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await home.scan(cursor, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    expect(keys.length).toBeGreaterThan(20);
    const slots = new Set(await Promise.all(keys.map((k) => home.call('CLUSTER', 'KEYSLOT', k))));
    expect([...slots]).toEqual([Number(await home.call('CLUSTER', 'KEYSLOT', '{caelum}'))]);
    expect(keys.every((k) => k.startsWith('{caelum}:'))).toBe(true);
    const elsewhere = await Promise.all(shards.filter((s) => s.port !== owner).map((s) => client(s.port).dbsize()));
    expect(elsewhere).toEqual([0, 0]);
  }, 180_000);

  it('without the hash tag, the queues scatter over the shards and a connection meets MOVED', async () => {
    const fleet = await loadFleet(CONFIG);
    const home = client(owner);
    const owners = await Promise.all(queueSpecs(fleet).map(async (q) => Number(await home.call('CLUSTER', 'KEYSLOT', `caelum:${q.name}:wait`))));
    const ranges = (await home.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const shardOf = (slot: number) => ranges.find(([from, to]) => from <= slot && slot <= to)![2][1];
    expect(new Set(owners.map(shardOf)).size).toBeGreaterThan(1);
    const away = queueSpecs(fleet).find((_, i) => shardOf(owners[i]!) !== owner)!;
    await expect(home.lpush(`caelum:${away.name}:wait`, 'x')).rejects.toThrow(/^MOVED \d+ 127\.0\.0\.1:\d+/);
  });
});
