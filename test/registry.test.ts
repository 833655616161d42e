// The registry against the real Postgres, in a schema of this file's own.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckpointLifecycle } from '../src/checkpoints/lifecycle.js';
import { createCheckpointRepository, type CheckpointRepository } from '../src/registry/checkpoints.js';
import { loadMigrations, migrate, SchemaAheadError } from '../src/registry/migrate.js';
import { createPool } from '../src/registry/pool.js';
import { prune } from '../src/checkpoints/prune.js';
import { judge } from '../src/checkpoints/judge.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { onePoolFleet } from './helpers/fleet.js';
import { startLifecycle, type LifecycleHarness } from './helpers/lifecycle.js';
import { testLogger } from './helpers/logger.js';
import { DATABASE_URL, uniqueName } from './helpers/servers.js';

let db: TestSchema;
let repo: CheckpointRepository;
// Every status change goes through the lifecycle; the repository holds the SQL.
let harness: LifecycleHarness;
let lifecycle: CheckpointLifecycle;
const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-registry-'));

beforeAll(async () => {
  db = await createTestSchema('registry');
  repo = createCheckpointRepository(db.pool);
  // The lifecycle re-checks a checkpoint's file before promoting, inside its model's folder.
  const command = (name: string) => ({ command: ['node', `examples/${name}.mjs`], timeoutSeconds: 60 });
  const model = { train: command('trainer'), validate: command('validator'), checkpointDir: dir };
  const models = Object.fromEntries(['reg-model', 'feed-model', 'roll-model', 'keep-model'].map((name) => [name, model]));
  harness = await startLifecycle(db.pool, onePoolFleet('(registry test)', { 'host-a': { gpus: [{ index: 0, name: 'Fake GPU 0', memoryMiB: 8192 }], cpuSlots: 1 } }, models));
  lifecycle = harness.lifecycle;
});
afterAll(async () => {
  await harness.close();
  await db.drop();
});

let seq = 0;
async function registered(model: string, metrics: Record<string, unknown> = { val_accuracy: 0.7 }) {
  const n = ++seq;
  const file = path.join(dir, `${model}-${n}.pt`);
  const content = `weights ${n}`;
  writeFileSync(file, content);
  const sha256 = createHash('sha256').update(content).digest('hex');
  const { checkpoint } = await repo.register(
    { model, versionMajor: 1, path: file, sizeBytes: Buffer.byteLength(content), sha256, metrics, trainingJobId: `job-${model}-${n}`, trigger: { reason: 'api' } },
    'test',
  );
  return checkpoint;
}

async function validated(model: string) {
  const c = await registered(model);
  await lifecycle.startValidation(c.id, 'test');
  return lifecycle.decide(c.id, { passed: true, metrics: { val_accuracy: 0.7 }, reasons: [], actor: 'test' });
}

describe('migrations', () => {
  it('two processes migrating a fresh schema at once both succeed, and each migration applies once', async () => {
    const schema = uniqueName('migrate');
    const pools = [1, 2].map(() => createPool(DATABASE_URL, testLogger, { schema, max: 1 }));
    try {
      const results = await Promise.all(pools.map((p) => migrate(p, testLogger, schema)));
      const versions = loadMigrations().map((m) => m.version);
      // One process applied them all; the other found nothing left to do.
      expect(results.map((r) => r.length).sort()).toEqual([0, versions.length]);
      const { rows } = await pools[0]!.query('select version from caelum_migrations order by version');
      expect(rows.map((r) => r.version)).toEqual(versions);
      // A database ahead of the code is refused.
      await pools[0]!.query("insert into caelum_migrations (version, name) values (999, 'from_the_future')");
      await expect(migrate(pools[1]!, testLogger, schema)).rejects.toBeInstanceOf(SchemaAheadError);
    } finally {
      await pools[0]!.query(`drop schema ${schema} cascade`);
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});

describe('registration', () => {
  it('gives each model increasing versions and labels, and registers a job only once', async () => {
    const a = await registered('reg-model');
    const b = await registered('reg-model');
    expect([a.version, b.version]).toEqual([1, 2]);
    expect(b.label).toBe('reg-model-v1.2.0');
    const again = await repo.register(
      { model: 'reg-model', versionMajor: 1, path: b.path, sizeBytes: 1, sha256: 'x', metrics: {}, trainingJobId: b.trainingJobId, trigger: {} },
      'test',
    );
    expect(again).toMatchObject({ created: false, checkpoint: { id: b.id } });
    expect((await repo.list({ model: 'reg-model', limit: 10, offset: 0 })).total).toBe(2);
    expect((await repo.history(b.id)).map((e) => e.toStatus)).toEqual(['registered']);
  });

  it('assigns feed numbers in validation order, and records every change with its actor', async () => {
    const c = await registered('feed-model');
    await lifecycle.startValidation(c.id, 'worker x');
    const v = await lifecycle.decide(c.id, { passed: true, metrics: { val_accuracy: 0.8 }, reasons: [], actor: 'worker x' });
    const r = await registered('feed-model');
    await lifecycle.startValidation(r.id, 'worker y');
    const rejected = await lifecycle.decide(r.id, { passed: false, metrics: { val_accuracy: 0.1 }, reasons: ['val_accuracy 0.1 is below the minimum 0.5'], actor: 'worker y' });
    expect(v.status).toBe('validated');
    expect(v.feedSeq).toBeGreaterThan(0);
    expect(rejected).toMatchObject({ status: 'rejected', feedSeq: null, rejectionReasons: ['val_accuracy 0.1 is below the minimum 0.5'] });
    const feed = await repo.feed({ model: 'feed-model', after: 0, limit: 10 });
    expect(feed.map((f) => f.id)).toEqual([c.id]);
    expect(await repo.feed({ model: 'feed-model', after: v.feedSeq!, limit: 10 })).toEqual([]);
    const history = await repo.history(c.id);
    expect(history.map((e) => [e.fromStatus, e.toStatus, e.actor])).toEqual([
      [null, 'registered', 'test'],
      ['registered', 'validating', 'worker x'],
      ['validating', 'validated', 'worker x'],
    ]);
  });
});

describe('promotion, rollback and retention', () => {
  it('promotes, supersedes, and rolls back to the previous validated checkpoint', async () => {
    const one = await validated('roll-model');
    const two = await validated('roll-model');
    await expect(lifecycle.rollback('roll-model', 'test', 'nothing yet')).rejects.toThrow(/no promoted checkpoint/);
    await lifecycle.promote(one.id, 'test', 'first');
    await lifecycle.promote(two.id, 'test', 'better');
    expect((await repo.get(one.id))!.status).toBe('superseded');
    const { from, to } = await lifecycle.rollback('roll-model', 'fincoll', 'accuracy dropped in production');
    expect([from.id, from.status, to.id, to.status]).toEqual([two.id, 'rolled_back', one.id, 'promoted']);
    expect((await repo.history(two.id)).at(-1)).toMatchObject({ toStatus: 'rolled_back', actor: 'fincoll', reason: 'accuracy dropped in production' });
    await expect(lifecycle.rollback('roll-model', 'test', 'again')).rejects.toThrow(/no earlier validated checkpoint/);
    const rejected = await registered('roll-model');
    await lifecycle.startValidation(rejected.id, 'test');
    await lifecycle.decide(rejected.id, { passed: false, metrics: {}, reasons: ['bad'], actor: 'test' });
    await expect(lifecycle.promote(rejected.id, 'test', 'no')).rejects.toThrow(/is rejected; only a validated checkpoint can be promoted/);
  });

  it('keeps exactly the newest N, never the promoted one nor one FinColl has loaded, and deletes pruned files', async () => {
    const model = 'keep-model';
    const cs = [];
    for (let i = 0; i < 6; i++) cs.push(await validated(model));
    await lifecycle.promote(cs[0]!.id, 'test', 'live');
    await repo.recordLoad(cs[1]!.id, 'fincoll-1', { host: 'wsl-27' }, 'fincoll');
    const pruned = await prune(repo, model, { retention: 2, checkpointDir: dir }, 'test', testLogger);
    expect(pruned).toEqual([cs[2]!.id, cs[3]!.id]);
    const live = (await repo.list({ model, limit: 50, offset: 0 })).checkpoints.filter((c) => !c.prunedAt).map((c) => c.id).sort();
    expect(live).toEqual([cs[0]!.id, cs[1]!.id, cs[4]!.id, cs[5]!.id].sort());
    expect(existsSync(cs[2]!.path)).toBe(false);
    expect(existsSync(cs[4]!.path)).toBe(true);
    await expect(lifecycle.promote(cs[2]!.id, 'test', 'no')).rejects.toThrow(/was pruned/);
    // Pruning again changes nothing.
    expect(await prune(repo, model, { retention: 2, checkpointDir: dir }, 'test', testLogger)).toEqual([]);
  });
});

describe('the validation rules', () => {
  const model = { thresholds: { val_accuracy: { min: 0.6 }, max_drawdown: { max: 0.3 } }, maxRegression: 0.05 };

  it('passes metrics that clear the thresholds and are not much worse than the promoted ones', () => {
    expect(judge(model, { val_accuracy: 0.7, max_drawdown: 0.2 }, { val_accuracy: 0.72, max_drawdown: 0.2 })).toEqual({ passed: true, reasons: [] });
  });

  it('names every reason to reject', () => {
    const v = judge(model, { val_accuracy: 0.55 }, undefined);
    expect(v.passed).toBe(false);
    expect(v.reasons).toEqual(['val_accuracy 0.55 is below the minimum 0.6', 'max_drawdown was not reported']);
    const worse = judge(model, { val_accuracy: 0.65, max_drawdown: 0.29 }, { val_accuracy: 0.75, max_drawdown: 0.2 });
    expect(worse.reasons).toEqual([
      "val_accuracy 0.65 is worse than the promoted checkpoint's 0.75 by more than 5%",
      "max_drawdown 0.29 is worse than the promoted checkpoint's 0.2 by more than 5%",
    ]);
  });
});
