// Fault: the Redis primary dies under load, and Sentinel promotes its replica.
//   - The stores: a primary, its replica and three sentinels of this test's own (private ports,
//     a temporary folder), the real Postgres (a schema of this file's own).
//   - The service: the api, a scheduler (a data sync every two seconds) and two workers, each a
//     real process given only REDIS_SENTINELS and REDIS_SENTINEL_NAME, and
//     CAELUM_REDIS_MIN_REPLICAS=1: an enqueue is acknowledged once the replica has it.
//   - The client: enqueues trainings one after another, each under its own Idempotency-Key,
//     retrying a key (503, or no answer) until it is acknowledged.
//   - Nemesis: while trainings run, SIGSTOP of the replica and its replication link cut on the
//     primary (CLIENT KILL TYPE replica), so the primary's writes stop reaching it; once the API
//     has refused enqueues for want of the replica's confirmation, kill -9 of the primary and
//     SIGCONT of the replica: the sentinels promote it without the primary's last writes
//     (counted: the replication bytes lost with the primary, which must be > 0, or the nemesis
//     did nothing). Then the old primary's box comes back (same port, empty) and the
//     sentinels make it the new primary's replica.
//   - Counted: trainings acknowledged; trainings present after the failover (must be equal: none
//     lost, none twice); acknowledged trainings that never completed (must be 0), those running
//     at the kill among them; scheduler fires recorded as enqueued whose job is missing (must
//     be 0); processes restarted (none: each follows the new primary by itself).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisSentinels } from '../helpers/redis-sentinels.js';
import { DATABASE_URL, uniqueName } from '../helpers/servers.js';
import { apiCaller, startStack, stackEnv, type Answer, type ServiceProcess } from '../helpers/service-process.js';
import { dropSchema } from '../helpers/db.js';
import { waitFor } from '../helpers/wait.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-fault-sentinel-'));
const schema = uniqueName('sentinel');
const TOKEN = 'operator-token-of-the-failover-test';
let stores: RedisSentinels;
const services: ServiceProcess[] = [];

beforeAll(async () => {
  stores = await RedisSentinels.start(path.join(dir, 'redis'));
}, 60_000);
afterAll(async () => {
  await Promise.all(services.map((s) => s.stop()));
  await stores?.stop();
  await dropSchema(schema);
  rmSync(dir, { recursive: true, force: true });
});

describe('a Redis failover under Sentinel', () => {
  it('loses no acknowledged job, adds none twice, and every process follows the new primary by itself', async () => {
    const env = stackEnv(mkdtempSync(path.join(dir, 'data-')), {
      REDIS_SENTINELS: stores.addresses,
      REDIS_SENTINEL_NAME: stores.name,
      CAELUM_REDIS_MIN_REPLICAS: '1',
      CAELUM_REDIS_WAIT_MS: '1000',
      DATABASE_URL,
      CAELUM_DB_SCHEMA: schema,
      CAELUM_PREFIX: 'caelum',
      CAELUM_API_TOKEN: TOKEN,
      CAELUM_JOB_LOCK_MS: '15000',
      CAELUM_STALLED_CHECK_MS: '5000',
    });
    const api = await startStack(env, services);
    const pids = services.map((s) => s.pid);
    const call = apiCaller(api.url, TOKEN);
    await waitFor('both workers to beat', async () => (await call('GET', '/api/workers')).body.workers?.length === 2, { timeoutMs: 30_000 });

    // The client: one key at a time, each retried until acknowledged.
    const acknowledged = new Map<string, string>();
    let retries = 0;
    let lastRefusal = '';
    let stopping = false;
    const enqueueUntilAcknowledged = async (key: string): Promise<void> => {
      for (;;) {
        const answer: Answer = await call('POST', '/api/jobs/training', { model: 'wide', params: { epochs: 6, epoch_ms: 250 } }, { 'idempotency-key': key }).catch((err: Error) => ({
          status: 0,
          body: { message: err.message },
        }));
        if (answer.status === 201 || answer.status === 200) {
          acknowledged.set(key, answer.body.id as string);
          return;
        }
        if (answer.status !== 503 && answer.status !== 0) throw new Error(`enqueue answered ${answer.status}: ${JSON.stringify(answer.body)}`);
        retries++;
        lastRefusal = `${answer.status} ${String(answer.body.message)}`;
        // A client's pause between tries, not a wait for a condition.
        await sleep(200);
      }
    };
    const client = (async () => {
      for (let n = 0; !stopping; n++) await enqueueUntilAcknowledged(`training-${n}`);
    })();

    await waitFor('six acknowledged trainings, one of them running', async () => {
      if (acknowledged.size < 6) return false;
      const active = (await call('GET', '/api/jobs?kind=training&state=active')).body.jobs as { id: string }[];
      return active.length > 0 ? active : false;
    }, { timeoutMs: 60_000 });
    const runningAtKill = ((await call('GET', '/api/jobs?kind=training&state=active')).body.jobs as { id: string }[]).map((j) => j.id);

    // The replica stops hearing the primary; enqueues now go unconfirmed, and are refused. (A
    // stopped replica alone would still get every write: its kernel buffers them for it.)
    process.kill(stores.replica.pid!, 'SIGSTOP');
    await stores.cutReplicationLinks(stores.primary.port);
    const refusedBefore = retries;
    await waitFor('two enqueues refused for want of the replica', () => retries >= refusedBefore + 2, { timeoutMs: 30_000 });
    const refusedUnconfirmed = lastRefusal;
    const acknowledgedBeforeKill = acknowledged.size;
    const primaryOffset = await stores.offset(stores.primary.port);
    const oldPrimary = stores.primary.port;
    const killedAt = performance.now();
    await stores.primary.kill9();
    process.kill(stores.replica.pid!, 'SIGCONT');
    const lostBytes = primaryOffset - (await stores.offset(stores.replica.port));
    await waitFor('the sentinels to promote the replica', async () => (await stores.primaryPort()) === stores.replica.port, { timeoutMs: 30_000 });
    const promotedMs = performance.now() - killedAt;
    // The old primary's box comes back, empty: the sentinels make it a replica of the new one.
    await stores.primary.restart();
    // Sentinel waits for the returned node's role to hold still before converting it: 10-25 s.
    await stores.waitForReplicas(stores.replica.port, 1, 90_000);
    const replicaBackMs = performance.now() - killedAt;
    await waitFor(
      'six more trainings acknowledged after the failover',
      () => {
        if (acknowledged.size >= acknowledgedBeforeKill + 6) return true;
        throw new Error(`${acknowledged.size - acknowledgedBeforeKill} so far; the last refusal: ${lastRefusal}`);
      },
      { timeoutMs: 60_000 },
    );
    stopping = true;
    await client;

    const ids = [...acknowledged.values()];
    const unfinished = await waitFor(
      'every acknowledged training to complete',
      async () => {
        const states = await Promise.all(ids.map(async (id) => [id, (await call('GET', `/api/jobs/${id}`)).body.state as string] as const));
        const open = states.filter(([, state]) => state !== 'completed');
        if (open.some(([, state]) => state === 'failed' || state === undefined)) return open;
        return open.length === 0 ? open : false;
      },
      { timeoutMs: 120_000 },
    );
    const present = (await call('GET', '/api/jobs?kind=training&limit=200')).body.total as number;

    const db = new pg.Client({ connectionString: DATABASE_URL });
    await db.connect();
    const { rows: fires } = await db.query<{ job_ids: string[] }>(`select job_ids from ${db.escapeIdentifier(schema)}.schedule_fires where outcome = 'enqueued'`);
    await db.end();
    const fireJobs = [...new Set(fires.flatMap((f) => f.job_ids))];
    const missingFireJobs = (await Promise.all(fireJobs.map(async (id) => ((await call('GET', `/api/jobs/${id}`)).status === 404 ? [id] : [])))).flat();

    const restarted = services.filter((s, i) => s.pid !== pids[i] || s.child.exitCode !== null).length;
    const restored = services.filter((s) => s.output().includes('"redis connection restored"')).length;
    console.info(
      `sentinel failover: primary :${oldPrimary} killed; replica promoted after ${Math.round(promotedMs)} ms, old primary back as replica after ${Math.round(replicaBackMs)} ms; ` +
        `${lostBytes} replication bytes lost with it; ` +
        `${acknowledged.size} trainings acknowledged (${acknowledgedBeforeKill} before the kill), ${present} present, ${unfinished.length} unfinished; ` +
        `${retries} client retries; ${runningAtKill.length} running at the kill; ${fires.length} fires enqueued, ${missingFireJobs.length} of their jobs missing`,
    );
    expect(refusedUnconfirmed).toMatch(/^503 the enqueue reached 0 of the 1 Redis replica\(s\) it needs within 1000 ms/);
    expect(lostBytes).toBeGreaterThan(0);
    expect(present).toBe(acknowledged.size);
    expect(new Set(ids).size).toBe(ids.length);
    expect(unfinished).toEqual([]);
    expect(runningAtKill.length).toBeGreaterThan(0);
    expect(fires.length).toBeGreaterThan(0);
    expect(missingFireJobs).toEqual([]);
    expect(restarted).toBe(0);
    // Each process lost Redis and found it again on its own.
    expect(restored).toBe(services.length);
    expect((await call('GET', '/api/health')).status).toBe(200);
  }, 300_000);
});
