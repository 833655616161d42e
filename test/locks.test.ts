// The fenced lock against the real Redis and Postgres, with real processes contending.
import path from 'node:path';
import readline from 'node:readline';
import { execa } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FencedLock } from '../src/locks/fenced-lock.js';
import { createMarketDataRepository, type MarketDataRepository } from '../src/registry/market-data.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { deletePrefix } from './helpers/redis.js';
import { DATABASE_URL, REDIS_URL, uniqueName } from './helpers/servers.js';
import { waitFor } from './helpers/wait.js';

let db: TestSchema;
let redis: Redis;
let repo: MarketDataRepository;
let lock: FencedLock;
const prefix = uniqueName('locks');
const opts = (holder: string, ttlMs = 5000) => ({ ttlMs, maxHoldMs: 60_000, holder });
const fixture = (name: string) => path.join(REPO_ROOT, 'test/fixtures', name);
const tsNode = (file: string, args: string[]) =>
  execa('node', ['--import', 'tsx', file, ...args], { cwd: REPO_ROOT, env: { REDIS_URL, DATABASE_URL }, reject: false });

beforeAll(async () => {
  db = await createTestSchema('locks');
  redis = new Redis(REDIS_URL);
  repo = createMarketDataRepository(db.pool);
  lock = new FencedLock(redis, repo, prefix);
});
afterAll(async () => {
  redis.disconnect();
  await deletePrefix(prefix);
  await db.drop();
});

describe('mutual exclusion', () => {
  it('four processes contending for one key over 1,000 acquisitions never hold it at once', async () => {
    const runs = await Promise.all([1, 2, 3, 4].map(() => tsNode(fixture('lock-contender.mts'), [prefix, 'contended', '250', db.schema])));
    for (const r of runs) expect(r.stderr).toBe('');
    const intervals = runs.flatMap((r) => JSON.parse(r.stdout) as [number, number, number][]).sort((a, b) => a[0] - b[0]);
    expect(intervals).toHaveLength(1000);
    for (let i = 1; i < intervals.length; i++) {
      // Each holding starts after the previous one ended, and carries a newer fence.
      expect(intervals[i]![0]).toBeGreaterThanOrEqual(intervals[i - 1]![1]);
      expect(intervals[i]![2]).toBeGreaterThan(intervals[i - 1]![2]);
    }
  });

  it('a release by a non-holder changes nothing', async () => {
    const a = (await lock.tryAcquire('owned', opts('a')))!;
    expect(await lock.releaseToken('owned', 'not-the-token')).toBe(false);
    expect(await lock.holder('owned')).toMatchObject({ holder: 'a', fence: a.fence });
    expect(await lock.tryAcquire('owned', opts('b'))).toBeUndefined();
    expect(await a.release()).toBe(true);
    const b = await lock.tryAcquire('owned', opts('b'));
    expect(b?.fence).toBeGreaterThan(a.fence);
    await b!.release();
  });

  it('aborts the holder at once when renewal fails', async () => {
    const a = (await lock.tryAcquire('renewed', opts('a', 600)))!;
    await redis.del(`${prefix}:lock:renewed`);
    await waitFor('the abort', () => a.signal.aborted, { timeoutMs: 1000 });
    expect(String((a.signal.reason as Error).message)).toMatch(/lock renewed lost: renewal failed/);
    expect(await a.release()).toBe(false);
  });

  it('aborts a holder that has held the lock for maxHoldMs, though every renewal succeeds', async () => {
    const start = performance.now();
    const a = (await lock.tryAcquire('capped', { ttlMs: 300, maxHoldMs: 700, holder: 'a' }))!;
    // Renewals (every 100 ms) keep succeeding, so it outlives its 300 ms TTL: only the cap ends it.
    await waitFor('the abort', () => a.signal.aborted, { timeoutMs: 3000 });
    expect(performance.now() - start).toBeGreaterThanOrEqual(700);
    expect(String((a.signal.reason as Error).message)).toMatch(/lock capped lost: held for longer than the 700 ms cap/);
    await a.release();
  });
});

describe('fencing', () => {
  it('a holder paused past its TTL is refused by the fence when it continues and writes', async () => {
    const a = execa('node', ['--import', 'tsx', fixture('lock-holder.mts'), prefix, 'paused', db.schema, '1000'], {
      cwd: REPO_ROOT,
      env: { REDIS_URL, DATABASE_URL },
      stdin: 'pipe',
      // Its output is read line by line below; execa must not consume it too.
      buffer: false,
      reject: false,
    });
    const lines = readline.createInterface({ input: a.stdout! });
    const next = () => new Promise<Record<string, unknown>>((resolve) => lines.once('line', (l) => resolve(JSON.parse(l))));
    const acquired = await next();
    process.kill(a.pid!, 'SIGSTOP'); // not a.kill: execa would follow it with a SIGKILL
    // B waits for A's TTL to run out (A cannot renew while stopped), then writes.
    const b = await lock.acquire('paused', opts('b'), 5000);
    expect(b).toBeDefined();
    expect(b!.fence).toBeGreaterThan(acquired.fence as number);
    expect(await repo.recordSync({ symbol: 'PAUSE', timeframe: '1d', fence: b!.fence, jobId: 'job-b', source: 'test', rows: 2, from: null, to: null })).toEqual({
      written: true,
      newestFence: b!.fence,
    });
    process.kill(a.pid!, 'SIGCONT');
    a.stdin!.end('write\n');
    const stale = await next();
    expect(stale).toMatchObject({ written: false, newestFence: b!.fence });
    await a;
    const [row] = (await repo.list()).filter((s) => s.symbol === 'PAUSE');
    expect(row).toMatchObject({ jobId: 'job-b', fence: b!.fence, rows: 2 });
    const { rows: log } = await db.pool.query("select job_id, outcome from market_data_sync_log where symbol = 'PAUSE' order by id");
    expect(log).toEqual([{ job_id: 'job-b', outcome: 'written' }, { job_id: 'job-a', outcome: 'refused' }]);
    await b!.release();
  });

  it('a grant older than one Postgres has recorded for the key is drawn again, so its holder is not refused', async () => {
    const key = 'redrawn';
    const early = await repo.nextFence();
    const newer = (await lock.tryAcquire(key, opts('newer')))!;
    await newer.release();
    // Redis forgets the newest token (as a flush would); a fence drawn before it comes in late.
    await redis.del(`${prefix}:lock:${key}:fence`);
    let late: number | undefined = early;
    const lateFirst = { nextFence: () => (late !== undefined ? Promise.resolve(late).finally(() => (late = undefined)) : repo.nextFence()), recordGrant: repo.recordGrant };
    const handle = (await new FencedLock(redis, lateFirst, prefix).tryAcquire(key, opts('late')))!;
    expect(handle.fence).toBeGreaterThan(newer.fence);
    expect(await repo.recordGrant(key, 0)).toBe(handle.fence);
    await handle.release();
  });

  it('Redis losing its data while a lock is held does not make the fence go backwards', async () => {
    // A Redis database of this test's own, so flushing it touches nobody else.
    const url = new URL(REDIS_URL);
    url.pathname = '/9';
    const own = new Redis(url.toString());
    try {
      const flushable = new FencedLock(own, repo, prefix);
      const a = (await flushable.tryAcquire('flushed', opts('a')))!;
      await own.flushdb();
      const b = (await flushable.tryAcquire('flushed', opts('b')))!;
      expect(b.fence).toBeGreaterThan(a.fence);
      const write = (fence: number, jobId: string) =>
        repo.recordSync({ symbol: 'FLUSH', timeframe: '1d', fence, jobId, source: 'test', rows: 1, from: null, to: null });
      expect((await write(b.fence, 'b')).written).toBe(true);
      expect((await write(a.fence, 'a')).written).toBe(false);
      await b.release();
      await a.release();
    } finally {
      await own.flushdb();
      own.disconnect();
    }
  });
});
