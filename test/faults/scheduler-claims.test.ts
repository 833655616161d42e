// Fault: a scheduler replica stopped between claiming a fire and enqueueing it, while another
// replica is live. Both are real `caelum-scheduler scheduler` processes firing an every-second
// schedule; the doomed one reaches Redis through the test's relay. Nemesis: the relay is
// black-holed, so the doomed replica's claims commit in Postgres and its enqueues hang; then
// (1) kill -9 of that replica, or (2) a heal after its leases ran out, so its enqueues and
// settles arrive late.
// Counted: fires left claimed without a job for longer than lease + repair period + margin,
// enqueued fires whose job is missing, jobs beyond one per fire, abandoned fires not repaired by
// the live replica, fires that failed.
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet } from '../../src/config/load-fleet.js';
import { QueueSet } from '../../src/queues/queue-set.js';
import { DEFAULT_CLAIM_LEASE_MS } from '../../src/scheduler/fire.js';
import { DEFAULT_REPAIR_EVERY_MS } from '../../src/scheduler/scheduler.js';
import { createTestSchema, type TestSchema } from '../helpers/db.js';
import { REPO_ROOT } from '../helpers/fleet.js';
import { testLogger } from '../helpers/logger.js';
import { deletePrefix } from '../helpers/redis.js';
import { DATABASE_URL, REDIS_URL, uniqueName } from '../helpers/servers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

const CONFIG = path.join(REPO_ROOT, 'test/fixtures/every-second.config.mts');
const SCHEDULE = 'every-second';
/** The longest a claim may stay without its job: the lease, a repair period, and a margin. */
const BOUND_MS = DEFAULT_CLAIM_LEASE_MS + DEFAULT_REPAIR_EVERY_MS + 2000;

const prefix = uniqueName('schedclaims');
const replicaOf = (pid: number) => `${os.hostname()}:${pid}`;
let db: TestSchema;
let relay: TcpProxy;
let redis: Redis;
let queues: QueueSet;
let live: ResultPromise;
const processes: ResultPromise[] = [];

function startScheduler(redisUrl: string): ResultPromise {
  const child = execa('node', [path.join(REPO_ROOT, 'bin/caelum-scheduler.js'), 'scheduler'], {
    cwd: REPO_ROOT,
    env: {
      REDIS_URL: redisUrl,
      DATABASE_URL,
      CAELUM_DB_SCHEMA: db.schema,
      CAELUM_CONFIG: CONFIG,
      CAELUM_PREFIX: prefix,
      CAELUM_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
    },
    reject: false,
  });
  processes.push(child);
  return child;
}

interface FireRow {
  id: string;
  outcome: string;
  job_ids: string[];
  claimed_by: string | null;
  repaired_by: string | null;
  scheduled_for: Date;
  /** From the claim to the outcome (or to now, while still claimed), by Postgres's clock. */
  open_ms: number;
}

const fires = async (where = 'true', params: unknown[] = []): Promise<FireRow[]> =>
  (
    await db.pool.query<FireRow>(
      `select id, outcome, job_ids, claimed_by, repaired_by, scheduled_for,
              extract(epoch from (case when outcome = 'claimed' then now() else updated_at end) - created_at) * 1000 as open_ms
       from schedule_fires where schedule = '${SCHEDULE}' and ${where} order by scheduled_for`,
      params,
    )
  ).rows.map((r) => ({ ...r, open_ms: Number(r.open_ms) }));

/** A replica up and enqueueing: it has settled a fire it claimed. */
const enqueueing = (pid: number) =>
  waitFor(`replica ${pid} to enqueue a fire`, async () => (await fires("outcome = 'enqueued' and claimed_by = $1", [replicaOf(pid)])).length > 0, {
    timeoutMs: 30_000,
  });

/** Claims of this replica that have waited for their enqueue longer than any enqueue takes. */
const stuckClaims = (pid: number, atLeast: number) =>
  waitFor(`${atLeast} claims of replica ${pid} to hang before their enqueue`, async () => {
    const stuck = await fires("outcome = 'claimed' and claimed_by = $1 and created_at < now() - interval '300 milliseconds'", [replicaOf(pid)]);
    return stuck.length >= atLeast ? stuck : undefined;
  });

async function countOutcomes() {
  const all = await fires();
  const queue = queues.get('training-ticker')!.queue;
  const jobs = await queue.getJobs(['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'], 0, -1);
  const fireJobIds = new Set(all.flatMap((f) => f.job_ids));
  const fireTimes = new Set(all.map((f) => f.scheduled_for.toISOString()));
  let missingJobs = 0;
  for (const id of fireJobIds) if (!(await queue.getJob(id))) missingJobs++;
  return {
    claimedWithoutJobTooLong: all.filter((f) => (f.outcome === 'claimed' || f.outcome === 'enqueued') && f.open_ms > BOUND_MS).length,
    missingJobs,
    // By the fire each job names (its trigger's scheduled time), not by the fires' recorded job
    // ids: a fire still claimed, whose late add has landed but whose repair is due, has a job
    // and no recorded id yet, and that job is its one, not one too many.
    jobsBeyondOnePerFire: jobs.length - new Set(jobs.map((j) => (j.data as { trigger: { scheduledFor: string } }).trigger.scheduledFor).filter((at) => fireTimes.has(at))).size,
    failed: all.filter((f) => f.outcome === 'failed').length,
  };
}

beforeAll(async () => {
  db = await createTestSchema('schedclaims');
  relay = new TcpProxy(new URL(REDIS_URL).hostname, Number(new URL(REDIS_URL).port || 6379));
  await relay.start();
  redis = new Redis(REDIS_URL);
  queues = new QueueSet(await loadFleet(CONFIG), redis, prefix, testLogger);
  live = startScheduler(REDIS_URL);
  await enqueueing(live.pid!);
});
afterAll(async () => {
  relay.heal();
  for (const p of processes) if (p.exitCode === null) p.kill('SIGTERM');
  await Promise.all(processes);
  await queues.close();
  redis.disconnect();
  await relay.cut();
  await deletePrefix(prefix);
  await db.drop();
});

describe('a scheduler replica stopped between claiming and enqueueing, with another replica live', () => {
  it('kill -9: the live replica enqueues every abandoned fire within the lease and a repair period, and says so', async () => {
    const doomed = startScheduler(`redis://127.0.0.1:${relay.port}`);
    await enqueueing(doomed.pid!);
    relay.blackHole();
    await stuckClaims(doomed.pid!, 2);
    process.kill(doomed.pid!, 'SIGKILL');
    await doomed;
    const abandoned = await fires("outcome = 'claimed' and claimed_by = $1", [replicaOf(doomed.pid!)]);
    expect(abandoned.length).toBeGreaterThanOrEqual(2);

    const ids = abandoned.map((f) => f.id);
    const repaired = await waitFor('the abandoned fires to be repaired', async () => {
      const rows = await fires('id = any($1::bigint[])', [ids]);
      return rows.every((f) => f.outcome !== 'claimed') ? rows : undefined;
    }, { timeoutMs: BOUND_MS + 5000 });
    expect(repaired.map((f) => [f.outcome, f.claimed_by, f.repaired_by])).toEqual(
      abandoned.map(() => ['enqueued', replicaOf(doomed.pid!), replicaOf(live.pid!)]),
    );
    // The live replica went on firing throughout.
    expect((await fires("outcome = 'enqueued' and claimed_by = $1", [replicaOf(live.pid!)])).length).toBeGreaterThan(1);
    expect(await countOutcomes()).toEqual({ claimedWithoutJobTooLong: 0, missingJobs: 0, jobsBeyondOnePerFire: 0, failed: 0 });
    relay.heal();
  });

  it('partition past the lease, then heal: the late enqueues add no job and the late settles change no outcome', async () => {
    const partitioned = startScheduler(`redis://127.0.0.1:${relay.port}`);
    await enqueueing(partitioned.pid!);
    relay.blackHole();
    const stuck = (await stuckClaims(partitioned.pid!, 1)).map((f) => f.id);
    // The live replica takes the claims over once their lease runs out, the claimer still alive.
    await waitFor('the stuck claims to be repaired', async () => {
      const rows = await fires('id = any($1::bigint[])', [stuck]);
      return rows.every((f) => f.outcome === 'enqueued' && f.repaired_by === replicaOf(live.pid!));
    }, { timeoutMs: BOUND_MS + 5000 });
    relay.heal();
    const healedAt = (await db.pool.query<{ now: Date }>('select now()')).rows[0]!.now;
    // Its held enqueues and settles now arrive; then it fires as usual.
    await waitFor('the partitioned replica to enqueue again', async () =>
      (await fires("outcome = 'enqueued' and claimed_by = $1 and repaired_by is null and created_at > $2", [replicaOf(partitioned.pid!), healedAt])).length > 0,
    );
    partitioned.kill('SIGTERM');
    expect((await partitioned).exitCode).toBe(0);
    const after = await fires('id = any($1::bigint[])', [stuck]);
    expect(after.every((f) => f.outcome === 'enqueued' && f.repaired_by === replicaOf(live.pid!) && f.job_ids.length === 1)).toBe(true);
    expect(await countOutcomes()).toEqual({ claimedWithoutJobTooLong: 0, missingJobs: 0, jobsBeyondOnePerFire: 0, failed: 0 });
  });
});
