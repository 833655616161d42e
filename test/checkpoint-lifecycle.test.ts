// The checkpoint lifecycle against the real Postgres (a schema of this file's own) and Redis:
// illegal steps refused with 409 and nothing changed, repeated and racing steps taken once, the
// feed woken after a validation commits, and what follows a verdict (autoPromote, retention).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCheckpointLifecycle, type CheckpointLifecycle } from '../src/checkpoints/lifecycle.js';
import { IllegalTransitionError, sourcesOf } from '../src/checkpoints/transitions.js';
import { feedChannel } from '../src/queues/redis-names.js';
import { closeRedis, createRedis } from '../src/redis.js';
import type { Checkpoint } from '../src/registry/checkpoints.js';
import { asOperator, startApi, type ApiHarness } from './helpers/api.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { testFleet, testFleetInput } from './helpers/fleet.js';
import { testLogger } from './helpers/logger.js';
import { REDIS_URL } from './helpers/servers.js';
import { waitFor } from './helpers/wait.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-lifecycle-'));
const base = testFleetInput().models['model-a']!;
const fleet = testFleet({
  models: {
    plain: { ...base, thresholds: { val_accuracy: { min: 0.5 } }, checkpointDir: path.join(dir, 'plain') },
    auto: { ...base, autoPromote: true, retention: 2, checkpointDir: path.join(dir, 'auto') },
    race: { ...base, checkpointDir: path.join(dir, 'race') },
  },
});
for (const m of Object.values(fleet.models)) mkdirSync(m.checkpointDir, { recursive: true });
const trigger = { reason: 'api' as const, by: 'test', at: new Date().toISOString() };

let db: TestSchema;
let api: ApiHarness;
let lifecycle: CheckpointLifecycle;

beforeAll(async () => {
  db = await createTestSchema('lifecycle');
  api = await startApi({ fleet, schema: db.schema });
  lifecycle = createCheckpointLifecycle({ registry: api.registry, fleet, queues: api.queues, redis: api.redis, prefix: api.prefix, logger: testLogger });
});
afterAll(async () => {
  await api.close();
  await db.drop();
});

let n = 0;
async function checkpointAt(model: string, status: 'registered' | 'validating' | 'validated' | 'rejected', metrics = { val_accuracy: 0.7 }) {
  const file = path.join(dir, model, `${++n}.pt`);
  const weights = `weights ${n}`;
  writeFileSync(file, weights);
  // Its true size and sha256, as the worker measures them: a promotion checks the file again.
  const sha256 = createHash('sha256').update(weights).digest('hex');
  const { checkpoint } = await lifecycle.register(
    { model, versionMajor: 1, path: file, sizeBytes: weights.length, sha256, metrics, trainingJobId: `job-${n}`, trigger: { reason: 'api' } },
    'test',
  );
  if (status === 'registered') return checkpoint;
  const validating = await lifecycle.startValidation(checkpoint.id, 'test');
  if (status === 'validating') return validating;
  const passed = status === 'validated';
  return lifecycle.decide(checkpoint.id, { passed, metrics, reasons: passed ? [] : ['bad'], actor: 'test' });
}

/** Everything a refused step must leave as it was: the row and its history. */
const snapshot = async (id: number) => ({ row: await api.registry.checkpoints.get(id), history: await api.registry.checkpoints.history(id) });
const promoteOverHttp = (id: number) => api.app.inject({ method: 'POST', url: `/api/checkpoints/${id}/promote`, headers: asOperator, payload: {} });

describe('a step the table does not allow', () => {
  it('is refused over HTTP with 409 and changes nothing, nor the promoted checkpoint', async () => {
    const [older, newer] = [await checkpointAt('plain', 'validated'), await checkpointAt('plain', 'validated')];
    await lifecycle.promote(older.id, 'test', 'first');
    await lifecycle.promote(newer.id, 'test', 'second');
    await lifecycle.rollback('plain', 'test', 'worse live'); // newer -> rolled_back, older promoted again
    const pruned = await checkpointAt('plain', 'validated');
    await api.registry.checkpoints.markPruned(pruned.id, { from: sourcesOf('pruned'), actor: 'test', reason: 'test' });
    const refused: [Checkpoint, RegExp][] = [
      [await checkpointAt('plain', 'rejected'), /is rejected; only a validated checkpoint can be promoted/],
      [await checkpointAt('plain', 'registered'), /is registered; only a validated/],
      [await checkpointAt('plain', 'validating'), /is validating; only a validated/],
      [newer, /is rolled_back; only a validated/],
      [pruned, /was pruned; it cannot be promoted/],
    ];
    for (const [c, message] of refused) {
      const before = await snapshot(c.id);
      const live = await snapshot(older.id);
      const res = await promoteOverHttp(c.id);
      expect([c.id, res.statusCode]).toEqual([c.id, 409]);
      expect(res.json()).toMatchObject({ error: 'conflict', message: expect.stringMatching(message) });
      expect(await snapshot(c.id)).toEqual(before);
      expect(await snapshot(older.id)).toEqual(live);
    }
    // No earlier checkpoint to roll back to: 409, and the promoted one stays.
    const live = await snapshot(older.id);
    const rollback = await api.app.inject({ method: 'POST', url: '/api/models/plain/rollback', headers: asOperator, payload: {} });
    expect([rollback.statusCode, rollback.json().message]).toEqual([409, 'model plain has no earlier validated checkpoint to roll back to']);
    expect(await snapshot(older.id)).toEqual(live);
    // Promoting the promoted one again is no step at all: 200, no new history.
    expect((await promoteOverHttp(older.id)).json().checkpoint.status).toBe('promoted');
    expect(await snapshot(older.id)).toEqual(live);
  });

  it('raises IllegalTransitionError from the lifecycle: no verdict before validation starts', async () => {
    const c = await checkpointAt('plain', 'registered');
    const before = await snapshot(c.id);
    const refusal = lifecycle.decide(c.id, { passed: true, metrics: {}, reasons: [], actor: 'test' });
    await expect(refusal).rejects.toBeInstanceOf(IllegalTransitionError);
    await expect(refusal).rejects.toMatchObject({ checkpointId: c.id, from: 'registered', to: 'validated' });
    expect(await snapshot(c.id)).toEqual(before);
  });
});

describe('repeated and racing steps', () => {
  it('takes a repeated step once: the rerun gets the row as it stands', async () => {
    const c = await checkpointAt('plain', 'validating');
    expect((await lifecycle.startValidation(c.id, 'again')).status).toBe('validating');
    const first = await lifecycle.decide(c.id, { passed: true, metrics: { val_accuracy: 0.7 }, reasons: [], actor: 'one' });
    const rerun = await lifecycle.decide(c.id, { passed: false, metrics: {}, reasons: ['late'], actor: 'two' });
    expect(rerun).toMatchObject({ status: 'validated', feedSeq: first.feedSeq });
    expect((await lifecycle.startValidation(c.id, 'late')).status).toBe('validated');
    expect((await api.registry.checkpoints.history(c.id)).map((e) => [e.toStatus, e.actor])).toEqual([
      ['registered', 'test'],
      ['validating', 'test'],
      ['validated', 'one'],
    ]);
  });

  it('of two verdicts at once writes one; of two promotions of one model at once leaves one promoted', async () => {
    const c = await checkpointAt('plain', 'validating');
    const verdicts = await Promise.all([
      lifecycle.decide(c.id, { passed: true, metrics: {}, reasons: [], actor: 'a' }),
      lifecycle.decide(c.id, { passed: false, metrics: {}, reasons: ['no'], actor: 'b' }),
    ]);
    expect(verdicts[0].status).toBe(verdicts[1].status);
    expect((await api.registry.checkpoints.history(c.id)).filter((e) => e.fromStatus === 'validating')).toHaveLength(1);

    const model = 'race';
    const [a, b] = [await checkpointAt(model, 'validated'), await checkpointAt(model, 'validated')];
    await Promise.all([lifecycle.promote(a.id, 'test', 'race'), lifecycle.promote(b.id, 'test', 'race')]);
    const statuses = [(await api.registry.checkpoints.get(a.id))!.status, (await api.registry.checkpoints.get(b.id))!.status].sort();
    expect(statuses).toEqual(['promoted', 'superseded']);
    const { checkpoints } = await api.registry.checkpoints.list({ model, status: 'promoted', limit: 10, offset: 0 });
    expect(checkpoints).toHaveLength(1);
  });
});

describe('the feed and what follows a verdict', () => {
  it('wakes the feed once a validation has committed, and not for a rejection', async () => {
    const sub = createRedis(REDIS_URL, 'worker', testLogger);
    const messages: { model: string; seq: number }[] = [];
    sub.on('message', (_channel: string, m: string) => messages.push(JSON.parse(m) as { model: string; seq: number }));
    await sub.subscribe(feedChannel(api.prefix));
    try {
      const rejected = await checkpointAt('plain', 'validating');
      const validated = await checkpointAt('plain', 'validating');
      await lifecycle.decide(rejected.id, { passed: false, metrics: {}, reasons: ['no'], actor: 'test' });
      const v = await lifecycle.decide(validated.id, { passed: true, metrics: {}, reasons: [], actor: 'test' });
      const [first] = await waitFor('the wake-up', () => (messages.length ? messages : undefined));
      // Published in order on one connection: a wake-up for the rejection would have come first.
      expect(first).toEqual({ model: 'plain', seq: v.feedSeq });
      const feed = await api.registry.checkpoints.feed({ model: 'plain', after: v.feedSeq! - 1, limit: 10 });
      expect(feed.map((c) => c.id)).toEqual([validated.id]);
    } finally {
      await closeRedis(sub);
    }
  });

  it('holds a candidate against the promoted checkpoint as validated', async () => {
    const live = await checkpointAt('plain', 'validated', { val_accuracy: 0.9 });
    await lifecycle.promote(live.id, 'test', 'live');
    const candidate = await checkpointAt('plain', 'validating', { val_accuracy: 0.6 });
    expect(await lifecycle.judge(candidate, { val_accuracy: 0.6 })).toEqual({
      passed: false,
      reasons: ["val_accuracy 0.6 is worse than the promoted checkpoint's 0.9 by more than 5%"],
      baseline: { val_accuracy: 0.9 },
    });
    expect((await lifecycle.judge(live, { val_accuracy: 0.6 })).baseline).toBeUndefined();
  });

  it('promotes with autoPromote, then prunes beyond the retention and deletes the file', async () => {
    const model = 'auto';
    const settled: Checkpoint[] = [];
    for (let i = 0; i < 3; i++) {
      const decided = await checkpointAt(model, 'validated');
      settled.push(await lifecycle.afterVerdict(decided, { actor: 'test', trigger }));
    }
    expect(settled.map((c) => c.status)).toEqual(['promoted', 'promoted', 'promoted']);
    const rows = await Promise.all(settled.map((c) => api.registry.checkpoints.get(c.id)));
    expect(rows.map((c) => [c!.status, c!.prunedAt !== null])).toEqual([
      ['superseded', true],
      ['superseded', false],
      ['promoted', false],
    ]);
    expect(existsSync(settled[0]!.path)).toBe(false);
    expect(existsSync(settled[1]!.path)).toBe(true);
    // A rejected checkpoint is not promoted.
    const rejected = await checkpointAt(model, 'rejected');
    expect((await lifecycle.afterVerdict(rejected, { actor: 'test', trigger })).status).toBe('rejected');
  });
});
