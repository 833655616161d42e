// The feed's 304s from memory: an API process answers a poll with nothing new without asking
// Postgres (shown by answering it with Postgres cut off), sees a validation another API process
// committed as soon as the wake-up reaches it, catches up on a wake-up that was never published
// by reading the heads again, and starts right after a restart.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCheckpointLifecycle, type CheckpointLifecycle } from '../src/checkpoints/lifecycle.js';
import { asReader, startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { testFleet, testFleetInput } from './helpers/fleet.js';
import { testLogger } from './helpers/logger.js';
import { DATABASE_URL, uniqueName } from './helpers/servers.js';
import { TcpProxy } from './helpers/tcp-proxy.js';
import { waitFor } from './helpers/wait.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-feed-index-'));
const base = testFleetInput().models['model-a']!;
const fleet = testFleet({ models: { fed: { ...base, checkpointDir: path.join(dir, 'fed') } } });
mkdirSync(fleet.models.fed!.checkpointDir, { recursive: true });
const prefix = uniqueName('feedindex');

let db: TestSchema;
let proxy: TcpProxy;
/** The API whose Postgres goes through the proxy; `other` is a second API process on the same prefix and schema. */
let api: ApiHarness;
let other: ApiHarness;
let lifecycle: CheckpointLifecycle;

beforeAll(async () => {
  db = await createTestSchema('feedindex');
  const target = new URL(DATABASE_URL);
  proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  await proxy.start();
  const proxied = new URL(DATABASE_URL);
  proxied.host = `127.0.0.1:${proxy.port}`;
  api = await startApi({ fleet, prefix, schema: db.schema, databaseUrl: proxied.toString(), feedRefreshMs: 60_000 });
  other = await startApi({ fleet, prefix, schema: db.schema, shared: true });
  lifecycle = createCheckpointLifecycle({ registry: other.registry, fleet, queues: other.queues, redis: other.redis, prefix, logger: testLogger });
});
afterAll(async () => {
  await other?.close();
  await api?.close();
  await proxy?.cut();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
/** A checkpoint registered, validated and (unless `quietly`) announced by the other API process. */
async function validated(quietly = false) {
  const file = path.join(fleet.models.fed!.checkpointDir, `${++n}.pt`);
  writeFileSync(file, `weights ${n}`);
  const sha256 = createHash('sha256').update(`weights ${n}`).digest('hex');
  const { checkpoint } = await lifecycle.register(
    { model: 'fed', versionMajor: 1, path: file, sizeBytes: `weights ${n}`.length, sha256, metrics: { val_accuracy: 0.7 }, trainingJobId: `job-${n}`, trigger: { reason: 'api' } },
    'test',
  );
  await lifecycle.startValidation(checkpoint.id, 'test');
  if (!quietly) return lifecycle.decide(checkpoint.id, { passed: true, metrics: {}, reasons: [], actor: 'test' });
  // The verdict committed, but its wake-up never published (Redis away at that moment).
  await other.registry.checkpoints.setVerdict(checkpoint.id, 'validated', { from: ['validating'], actor: 'test', reason: 'passed', metrics: {}, reasons: [] });
  return (await other.registry.checkpoints.get(checkpoint.id))!;
}

const poll = (h: ApiHarness, after: number, etag?: string) =>
  h.app.inject({
    method: 'GET',
    url: `/api/checkpoints/feed?model=fed&after=${after}`,
    headers: { ...asReader, ...(etag ? { 'if-none-match': etag } : {}) },
  });

describe('the feed index', () => {
  it('answers a poll with nothing new from memory, with Postgres cut off', async () => {
    const first = await validated();
    const seq = first.feedSeq!;
    // The index learns of it (from the wake-up), then a poll after it has nothing new.
    const fresh = await waitFor('the feed to have nothing after the validated checkpoint', async () => {
      const res = await poll(api, seq);
      return res.statusCode === 200 && res.json().checkpoints.length === 0 ? res : undefined;
    });
    const etag = fresh.headers.etag as string;
    expect(etag).toBe(`"feed-fed-${seq}-${seq}"`);
    await proxy.cut();
    try {
      expect((await poll(api, seq, etag)).statusCode).toBe(304);
      // The same poll without If-None-Match needs Postgres, and says it is away.
      expect((await poll(api, seq)).statusCode).toBe(503);
    } finally {
      await proxy.restore();
    }
  });

  it('sees a validation another API process committed as soon as its wake-up arrives', async () => {
    const before = (await api.registry.checkpoints.feedHeads()).get('fed')!;
    const etag = `"feed-fed-${before}-${before}"`;
    expect((await poll(api, before, etag)).statusCode).toBe(304);
    const next = await validated();
    const res = await waitFor('the new checkpoint in the answer', async () => {
      const r = await poll(api, before, etag);
      return r.statusCode === 200 ? r : undefined;
    }, { timeoutMs: 2_000, intervalMs: 10 });
    expect(res.json().checkpoints.map((c: { id: number }) => c.id)).toEqual([next.id]);
  });

  it('catches up on a validation whose wake-up was never published when it reads the heads again, and after a restart', async () => {
    const before = (await api.registry.checkpoints.feedHeads()).get('fed')!;
    const etag = `"feed-fed-${before}-${before}"`;
    const missed = await validated(true);
    // No wake-up: this process still believes nothing is new (its next read is a minute away)...
    expect((await poll(api, before, etag)).statusCode).toBe(304);
    // ...while a process started now reads the heads and answers with it.
    const restarted = await startApi({ fleet, prefix, schema: db.schema, shared: true });
    try {
      const res = await poll(restarted, before, etag);
      expect(res.statusCode).toBe(200);
      expect(res.json().checkpoints.map((c: { id: number }) => c.id)).toEqual([missed.id]);
      const now = missed.feedSeq!;
      expect((await poll(restarted, now, `"feed-fed-${now}-${now}"`)).statusCode).toBe(304);
    } finally {
      await restarted.close();
    }
    // A process that reads the heads every 200 ms catches up on its own.
    const quick = await startApi({ fleet, prefix, schema: db.schema, shared: true, feedRefreshMs: 200 });
    try {
      const later = await validated(true);
      const seen = await waitFor('the periodic read to find it', async () => {
        const r = await poll(quick, missed.feedSeq!, `"feed-fed-${missed.feedSeq}-${missed.feedSeq}"`);
        return r.statusCode === 200 ? r : undefined;
      }, { timeoutMs: 5_000 });
      expect(seen.json().checkpoints.map((c: { id: number }) => c.id)).toEqual([later.id]);
    } finally {
      await quick.close();
    }
  });
});
