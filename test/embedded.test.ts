// The demo's fallbacks: a private redis-server when no Redis answers, and PGlite over the wire
// protocol when no PostgreSQL answers, each serving the same client code as the real servers.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { provideDatabase } from '../src/dev/embedded-postgres.js';
import { sourcesOf } from '../src/checkpoints/transitions.js';
import { createCheckpointRepository } from '../src/registry/checkpoints.js';
import { loadMigrations, migrate } from '../src/registry/migrate.js';
import { provideRedis } from '../src/dev/embedded-redis.js';
import { answers } from '../src/net.js';
import { checkRedisSafety } from '../src/redis-safety.js';
import { testLogger } from './helpers/logger.js';
import { DATABASE_URL, DEAD_DATABASE_URL, DEAD_REDIS_URL, REDIS_URL, uniqueName } from './helpers/servers.js';

describe('provideRedis', () => {
  it('uses REDIS_URL when set, else the local Redis when it answers', async () => {
    expect((await provideRedis('redis://elsewhere:6380', os.tmpdir(), testLogger)).url).toBe('redis://elsewhere:6380');
    const local = await provideRedis(undefined, os.tmpdir(), testLogger, REDIS_URL);
    expect(local).toMatchObject({ url: REDIS_URL, embedded: false });
  });

  it('starts a private redis-server when none answers, keeps its data across a restart, and stops it on close', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-redis-'));
    try {
      const provided = await provideRedis(undefined, dir, testLogger, DEAD_REDIS_URL);
      expect(provided).toMatchObject({ embedded: true, folder: path.join(dir, 'redis') });
      const redis = new Redis(provided.url);
      const queue = new Queue('demo', { connection: { url: provided.url } });
      try {
        // With AOF on, the demo's start-up check has nothing to warn about.
        expect((await checkRedisSafety(redis)).warnings).toEqual([]);
        await redis.set('k', 'v');
        await queue.add('training', { model: 'm' }, { jobId: 'kept-job' });
        // A second demo on the same folder is refused while this one runs.
        await expect(provideRedis(undefined, dir, testLogger, DEAD_REDIS_URL)).rejects.toThrow(
          `the private Redis's data in ${path.join(dir, 'redis')} is in use by another demo (pid ${process.pid})`,
        );
      } finally {
        await queue.close();
        redis.disconnect();
        await provided.close();
      }
      expect(await answers('127.0.0.1', Number(new URL(provided.url).port))).toBe(false);

      // The demo restarted: a new redis-server on the same folder has the key and the job back.
      const again = await provideRedis(undefined, dir, testLogger, DEAD_REDIS_URL);
      const reopened = new Redis(again.url);
      const queueAgain = new Queue('demo', { connection: { url: again.url } });
      try {
        expect(await reopened.get('k')).toBe('v');
        const job = await queueAgain.getJob('kept-job');
        expect(job?.data).toEqual({ model: 'm' });
        expect(await job?.getState()).toBe('waiting');
      } finally {
        await queueAgain.close();
        reopened.disconnect();
        await again.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('provideDatabase', () => {
  it('creates the local database when it is missing', async () => {
    const name = uniqueName('db');
    const url = DATABASE_URL.replace(/\/[^/]*$/, `/${name}`);
    const provided = await provideDatabase(undefined, os.tmpdir(), testLogger, url);
    expect(provided).toMatchObject({ url, embedded: false });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    expect((await client.query('select current_database() as db')).rows[0].db).toBe(name);
    await client.end();
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query(`drop database ${admin.escapeIdentifier(name)}`);
    await admin.end();
  });

  it('refuses a second demo on the same PGlite folder, and takes over a lock whose process died', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-pglite-'));
    const lock = path.join(dir, 'pglite.lock');
    const refusal = (pid: number) =>
      `the embedded database in ${path.join(dir, 'pglite')} is in use by another demo (pid ${pid}); stop that one, or set CAELUM_DATA_DIR to another folder`;
    try {
      const first = await provideDatabase(undefined, dir, testLogger, DEAD_DATABASE_URL);
      try {
        expect(readFileSync(lock, 'utf8').trim()).toBe(String(process.pid));
        await expect(provideDatabase(undefined, dir, testLogger, DEAD_DATABASE_URL)).rejects.toThrow(refusal(process.pid));
      } finally {
        await first.close();
      }
      expect(existsSync(lock)).toBe(false);

      // Another live process holds it: refused, naming that process.
      const other = execa('node', ['-e', 'setInterval(() => {}, 1000)']);
      try {
        writeFileSync(lock, `${other.pid}\n`);
        await expect(provideDatabase(undefined, dir, testLogger, DEAD_DATABASE_URL)).rejects.toThrow(refusal(other.pid!));
      } finally {
        other.kill();
        await other.catch(() => {});
      }
      // Now that process is dead: its lock is stale, and the next demo takes the folder over.
      const taken = await provideDatabase(undefined, dir, testLogger, DEAD_DATABASE_URL);
      expect(readFileSync(lock, 'utf8').trim()).toBe(String(process.pid));
      await taken.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves PGlite over the wire protocol when no PostgreSQL answers', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-pglite-'));
    const provided = await provideDatabase(undefined, dir, testLogger, DEAD_DATABASE_URL);
    try {
      expect(provided).toMatchObject({ embedded: true, maxConnections: 1 });
      const pool = new pg.Pool({ connectionString: provided.url, max: provided.maxConnections });
      pool.on('error', () => {}); // the server stops under an idle client at the end
      await pool.query('create table t (id serial primary key, v text)');
      await pool.query('insert into t (v) values ($1), ($2)', ['a', 'b']);
      expect((await pool.query('select count(*)::int as n from t')).rows[0].n).toBe(2);
      // The registry's SQL (migrations, advisory locks, the feed sequence) runs on PGlite too.
      expect(await migrate(pool, testLogger)).toEqual(loadMigrations().map((m) => m.version));
      const repo = createCheckpointRepository(pool);
      const { checkpoint } = await repo.register(
        { model: 'm', versionMajor: 1, path: '/x.pt', sizeBytes: 1, sha256: 'a', metrics: {}, trainingJobId: 'j1', trigger: {} },
        'test',
      );
      const by = { actor: 'test', reason: 'demo' };
      await repo.setValidating(checkpoint.id, { ...by, from: sourcesOf('validating') });
      const validated = await repo.setVerdict(checkpoint.id, 'validated', { ...by, from: sourcesOf('validated'), metrics: { val_accuracy: 0.7 }, reasons: [] });
      expect(validated.checkpoint.feedSeq).toBe(1);
      expect((await repo.setPromoted(checkpoint.id, { ...by, from: sourcesOf('promoted') })).checkpoint.status).toBe('promoted');
      expect((await repo.feed({ after: 0, limit: 10 })).map((c) => c.id)).toEqual([checkpoint.id]);
      await pool.end();
    } finally {
      await provided.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
