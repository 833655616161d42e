// Fault: a lock holder cut off from Redis while Postgres stays reachable, and another holder that
// reaches Redis directly. Nemesis: a black-holed link between the holder and Redis (its commands
// hang; nothing answers or fails), healed before the new holder writes, so the old holder's
// write arrives while the new one holds the lock and has not written: the case where "a newer
// fence has written the key" is no defence. Played on the lock directly, and on a real data-sync
// job whose worker's every Redis connection goes through the link.
// Counted: stale writes accepted, holders that noticed the loss later than TTL + margin after the
// link went dark, holders still unaware when the new holder's grant came back.
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../../src/config/load-fleet.js';
import { FencedLock, type LockHandle } from '../../src/locks/fenced-lock.js';
import { enqueue } from '../../src/queues/enqueue.js';
import { QueueSet } from '../../src/queues/queue-set.js';
import { syncLockKey } from '../../src/queues/redis-names.js';
import { createMarketDataRepository, type MarketDataRepository } from '../../src/registry/market-data.js';
import { createTestSchema, type TestSchema } from '../helpers/db.js';
import { REPO_ROOT } from '../helpers/fleet.js';
import { testLogger } from '../helpers/logger.js';
import { deletePrefix } from '../helpers/redis.js';
import { REDIS_URL, uniqueName } from '../helpers/servers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { pidAlive, waitFor } from '../helpers/wait.js';
import { childGroupOf, startTestWorkers } from '../helpers/workers.js';

const TTL_MS = 1000;
/** How late after the TTL a holder may notice: timer lateness on a loaded 2-core machine. */
const MARGIN_MS = 250;
const ROUNDS = 5;

const prefix = uniqueName('lockhole');
const redisPort = Number(new URL(REDIS_URL).port || 6379);
let db: TestSchema;
let repo: MarketDataRepository;
let relay: TcpProxy;
let direct: Redis;
let behindRelay: Redis;

beforeAll(async () => {
  db = await createTestSchema('lockhole');
  repo = createMarketDataRepository(db.pool);
  relay = new TcpProxy(new URL(REDIS_URL).hostname, redisPort);
  await relay.start();
  direct = new Redis(REDIS_URL);
  // As the workers' lock connection is: it waits out trouble rather than failing commands.
  behindRelay = new Redis(`redis://127.0.0.1:${relay.port}`, { maxRetriesPerRequest: null });
});
afterAll(async () => {
  relay.heal();
  behindRelay.disconnect();
  direct.disconnect();
  await relay.cut();
  await deletePrefix(prefix);
  await db.drop();
});

const write = (symbol: string, fence: number, jobId: string) =>
  repo.recordSync({ symbol, timeframe: '1d', fence, jobId, source: 'test', rows: 1, from: null, to: null });

function abortTime(handle: LockHandle): { at: number | undefined } {
  const seen: { at: number | undefined } = { at: undefined };
  handle.signal.addEventListener('abort', () => (seen.at = performance.now()), { once: true });
  return seen;
}

describe('a holder behind a black-holed link to Redis', () => {
  it(`knows it lost the lock within TTL + ${MARGIN_MS} ms, and its write after the link heals is refused (${ROUNDS} rounds)`, async () => {
    const lockA = new FencedLock(behindRelay, repo, prefix);
    const lockB = new FencedLock(direct, repo, prefix);
    const counts = { staleAccepted: 0, noticedLate: 0, unawareAtNewGrant: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const symbol = `HOLE${round}`;
      const key = syncLockKey(symbol, '1d');
      const a = (await lockA.tryAcquire(key, { ttlMs: TTL_MS, maxHoldMs: 60_000, holder: 'a' }))!;
      expect(a).toBeDefined();
      const aborted = abortTime(a);
      const darkAt = performance.now();
      relay.blackHole();

      // B reaches Redis; it is granted once A's key expires there.
      const b = await lockB.acquire(key, { ttlMs: 10_000, maxHoldMs: 60_000, holder: 'b' }, TTL_MS + 5000);
      const grantedAt = performance.now();
      expect(b?.fence).toBeGreaterThan(a.fence);
      await waitFor('A to notice', () => aborted.at !== undefined, { timeoutMs: TTL_MS + 2000 });
      expect(String((a.signal.reason as Error).message)).toMatch(`lock ${key} lost: no renewal succeeded within the ${TTL_MS} ms TTL`);
      if (aborted.at! - darkAt > TTL_MS + MARGIN_MS) counts.noticedLate++;
      if (aborted.at! > grantedAt) counts.unawareAtNewGrant++;

      // The link heals before B writes; A, not told by Redis, writes anyway.
      relay.heal();
      const stale = await write(symbol, a.fence, 'job-a');
      if (stale.written) counts.staleAccepted++;
      expect(stale).toEqual({ written: false, newestFence: b!.fence });
      expect(await write(symbol, b!.fence, 'job-b')).toEqual({ written: true, newestFence: b!.fence });
      // A's connection survived the black hole; its release finds the lock is B's.
      expect(await a.release()).toBe(false);
      expect(await b!.release()).toBe(true);
      const [row] = (await repo.list()).filter((s) => s.symbol === symbol);
      expect(row).toMatchObject({ jobId: 'job-b', fence: b!.fence });
    }
    expect(counts).toEqual({ staleAccepted: 0, noticedLate: 0, unawareAtNewGrant: 0 });
    const { rows: log } = await db.pool.query<{ job_id: string; outcome: string }>(
      "select job_id, outcome from market_data_sync_log where symbol like 'HOLE%' order by id",
    );
    expect(log).toEqual(Array.from({ length: ROUNDS }, () => [{ job_id: 'job-a', outcome: 'refused' }, { job_id: 'job-b', outcome: 'written' }]).flat());
  });
});

describe('a data-sync job whose worker is behind a black-holed link to Redis', () => {
  it('ends its syncer within TTL + margin, writes nothing, and the holder that followed writes', async () => {
    const fleet = parseFleet(
      {
        hosts: { 'host-a': { gpus: [], cpuSlots: 1 } },
        pools: { alpha: ['host-a'] },
        models: {},
        backtest: { pool: 'alpha', command: ['node', 'examples/backtester.mjs'], timeoutSeconds: 60 },
        dataSync: {
          pool: 'alpha',
          command: ['node', 'examples/data-syncer.mjs', '--rows', '5', '--delay-ms', '30000'],
          timeoutSeconds: 60,
          attempts: 1,
          lockTtlSeconds: TTL_MS / 1000,
        },
      },
      '(lock black-hole test)',
      REPO_ROOT,
    );
    const queues = new QueueSet(fleet, direct, prefix, testLogger);
    const workers = await startTestWorkers(fleet, prefix, db.pool, ['host-a'], {}, undefined, { redisUrl: `redis://127.0.0.1:${relay.port}` });
    try {
      const { id } = await enqueue({ fleet, queues }, 'data-sync', { symbol: 'PROC', timeframe: '1d' }, { reason: 'api', by: 'test', at: new Date().toISOString() });
      const pgid = await waitFor('the syncer to start', () => childGroupOf(direct, prefix, 'host-a', id));
      const key = syncLockKey('PROC', '1d');
      const lockB = new FencedLock(direct, repo, prefix);
      const holderA = (await lockB.holder(key))!;
      expect(holderA.holder).toBe(id);

      const darkAt = performance.now();
      relay.blackHole();
      // The worker cannot reach Redis, but it ends the syncer on its own clock.
      await waitFor('the syncer to be ended', () => !pidAlive(pgid), { timeoutMs: TTL_MS + 3000, intervalMs: 20 });
      const endedAt = performance.now();
      const b = (await lockB.acquire(key, { ttlMs: 10_000, maxHoldMs: 60_000, holder: 'b' }, TTL_MS + 5000))!;
      expect(b.fence).toBeGreaterThan(holderA.fence);

      relay.heal();
      const job = (): Promise<Job> => queues.get('data-sync')!.queue.getJob(id) as Promise<Job>;
      const failed = await waitFor('the job to fail', async () => ((await job()).finishedOn ? job() : undefined), { timeoutMs: 15_000 });
      expect(await failed.getState()).toBe('failed');
      expect(failed.failedReason).toMatch(`lock ${key} lost: no renewal succeeded within the ${TTL_MS} ms TTL`);
      expect(await write('PROC', b.fence, 'job-b')).toEqual({ written: true, newestFence: b.fence });
      await b.release();

      // Ending the group takes SIGTERM and the exit; the kill grace is not needed by this syncer.
      expect(endedAt - darkAt).toBeLessThan(TTL_MS + MARGIN_MS + 500);
      const { rows: log } = await db.pool.query<{ job_id: string; fence: string; outcome: string }>(
        "select job_id, fence, outcome from market_data_sync_log where symbol = 'PROC' order by id",
      );
      const staleAccepted = log.filter((r) => r.outcome === 'written' && Number(r.fence) < b.fence).length;
      expect({ staleAccepted, log: log.map((r) => `${r.job_id} ${r.outcome}`) }).toEqual({ staleAccepted: 0, log: ['job-b written'] });
    } finally {
      relay.heal();
      await workers.close();
      await queues.close();
    }
  });
});
