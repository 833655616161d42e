// Fault: Redis restarts in the middle of running jobs. A redis-server of this test's own (its
// own port and data folder), real workers in this process, real trainers, the real Postgres.
//   - Nemesis: kill -9 of Redis with its append-only file on, and a restart on the same port and
//     folder. Counted: jobs lost, jobs started more than once, checkpoints registered per job,
//     checkpoints whose lineage says the job was gone; and how long the worker took to beat
//     again after the restart.
//   - Nemesis: the same with the append-only file off, so the restart loses every job. Counted:
//     jobs left in Redis (must be 0, or the nemesis did nothing), checkpoints the trainers wrote,
//     checkpoints registered, registered without saying that the job was gone from Redis,
//     registered twice.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../../src/config/load-fleet.js';
import { enqueue } from '../../src/queues/enqueue.js';
import { QueueSet } from '../../src/queues/queue-set.js';
import { listWorkers } from '../../src/queues/worker-status.js';
import { createTestSchema, type TestSchema } from '../helpers/db.js';
import { REPO_ROOT } from '../helpers/fleet.js';
import { testLogger } from '../helpers/logger.js';
import { PrivateRedis } from '../helpers/private-redis.js';
import { uniqueName } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorkers } from '../helpers/workers.js';

const sandbox = mkdtempSync(path.join(os.tmpdir(), 'caelum-fault-redis-'));
const HOST = 'host-r';
const checkpointDir = (model: string) => path.join(sandbox, 'checkpoints', model);
const example = (name: string) => ({ command: ['node', `examples/${name}.mjs`], timeoutSeconds: 30 });
const model = (name: string) => ({
  pool: 'all',
  gpusPerRun: 1,
  train: { ...example('trainer'), attempts: 1 },
  validate: example('validator'),
  checkpointDir: checkpointDir(name),
});
const fleet = parseFleet(
  {
    hosts: { [HOST]: { gpus: [0, 1, 2].map((index) => ({ index, name: 'Fake GPU', memoryMiB: 8192 })), cpuSlots: 2 } },
    pools: { all: [HOST] },
    models: { kept: model('kept'), forgotten: model('forgotten') },
    backtest: { pool: 'all', ...example('backtester') },
    dataSync: { pool: 'all', ...example('data-syncer') },
  },
  '(Redis restart fault test)',
  REPO_ROOT,
);

let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema('faultredis');
});
afterAll(async () => {
  await db?.drop();
  rmSync(sandbox, { recursive: true, force: true });
});

/** A private Redis, the test's connection to it, a queue set and one host worker, closed in reverse. */
async function withStack<T>(appendOnly: boolean, body: (s: { server: PrivateRedis; redis: Redis; queues: QueueSet; prefix: string }) => Promise<T>): Promise<T> {
  const dir = path.join(sandbox, appendOnly ? 'redis-aof' : 'redis-no-aof');
  mkdirSync(dir, { recursive: true });
  const server = await PrivateRedis.start(dir, { appendOnly });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  redis.on('error', () => {}); // the nemesis: errors while Redis is away are expected
  const prefix = uniqueName('faultredis');
  const queues = new QueueSet(fleet, redis, prefix, testLogger);
  try {
    const workers = await startTestWorkers(fleet, prefix, db.pool, [HOST], {}, undefined, { redisUrl: server.url });
    try {
      return await body({ server, redis, queues, prefix });
    } finally {
      await workers.close();
    }
  } finally {
    await queues.close();
    redis.disconnect();
    await server.kill9();
  }
}

const train = (queues: QueueSet, modelName: string, epochs = 8) =>
  enqueue({ fleet, queues }, 'training', { model: modelName, params: { epochs, epoch_ms: 400 } }, {
    reason: 'api',
    by: 'fault test',
    at: new Date().toISOString(),
  });
const getJob = (queues: QueueSet, modelName: string, id: string) => queues.get(`training-${modelName}`)!.queue.getJob(id) as Promise<Job | undefined>;
const epochOf = (job: Job | undefined) => (job?.progress as { epoch?: number } | undefined)?.epoch ?? 0;

interface Row {
  training_job_id: string;
  lineage: Record<string, unknown>;
}
const registrations = async (modelName: string) =>
  (await db.pool.query<Row>('select training_job_id, lineage from checkpoints where model = $1', [modelName])).rows;

describe('Redis restarts during running jobs', () => {
  it('with the append-only file on, a kill -9 of Redis loses nothing and runs nothing twice', async () => {
    const JOBS = 3;
    await withStack(true, async ({ server, redis, queues, prefix }) => {
      const jobs = await Promise.all(Array.from({ length: JOBS }, () => train(queues, 'kept')));
      // Past the second epoch: every job has been active for a while, written out by the AOF.
      await waitFor('every job to be past its second epoch', async () =>
        (await Promise.all(jobs.map((j) => getJob(queues, 'kept', j.id)))).every((j) => epochOf(j) >= 2),
      );

      // Nemesis: kill -9 of Redis, and a restart on the same port and folder.
      await server.kill9();
      await server.restart();
      const restartedAt = Date.now();
      const reconnectMs = await waitFor('the worker to beat again', async () => {
        const beat = (await listWorkers(redis, prefix)).find((w) => w.host === HOST);
        return beat && Date.parse(beat.at) > restartedAt ? Date.parse(beat.at) - restartedAt : undefined;
      });

      const done = await Promise.all(
        jobs.map((j) =>
          waitFor(`job ${j.id} to finish`, async () => {
            const job = await getJob(queues, 'kept', j.id);
            return job?.finishedOn ? job : undefined;
          }, { timeoutMs: 30_000 }),
        ),
      );
      const states = await Promise.all(done.map((j) => j.getState()));
      const rows = await registrations('kept');
      testLogger.info({ reconnectMs }, 'worker beat again after the Redis restart');
      expect({
        lost: states.filter((s) => s !== 'completed').length,
        startedMoreThanOnce: done.filter((j) => j.attemptsStarted > 1).length,
        jobsWithoutCheckpoint: jobs.filter((j) => !rows.some((r) => r.training_job_id === j.id)).length,
        duplicated: rows.length - new Set(rows.map((r) => r.training_job_id)).size,
        notedAsGoneFromRedis: rows.filter((r) => 'jobRecord' in r.lineage).length,
        reconnectedWithin5s: reconnectMs < 5000,
      }).toEqual({ lost: 0, startedMoreThanOnce: 0, jobsWithoutCheckpoint: 0, duplicated: 0, notedAsGoneFromRedis: 0, reconnectedWithin5s: true });
    });
  });

  it('with the append-only file off, the restart loses the jobs, and their checkpoints are registered once, saying so', async () => {
    // One trainer ends right after the restart, likely before the job lock is next extended; the
    // other runs on for seconds after its lock was found gone.
    const LENGTHS = [4, 10];
    const JOBS = LENGTHS.length;
    await withStack(false, async ({ server, redis, queues, prefix }) => {
      const jobs = await Promise.all(LENGTHS.map((epochs) => train(queues, 'forgotten', epochs)));
      await waitFor('every job to be past its second epoch', async () =>
        (await Promise.all(jobs.map((j) => getJob(queues, 'forgotten', j.id)))).every((j) => epochOf(j) >= 2),
      );

      // Nemesis: kill -9 of Redis, and a restart with nothing: every job is gone.
      await server.kill9();
      await server.restart();
      const left = (await Promise.all(jobs.map((j) => getJob(queues, 'forgotten', j.id)))).filter((j) => j !== undefined).length;

      // The trainers run on; each checkpoint they write is registered.
      await waitFor('a checkpoint of every job to be registered', async () => (await registrations('forgotten')).length >= JOBS, { timeoutMs: 30_000 });
      // Every job has left the worker, so no late registration is missed below.
      await waitFor('the worker to run no job', async () => (await listWorkers(redis, prefix)).find((w) => w.host === HOST)?.running.length === 0);
      const again = await registrations('forgotten');
      // Each start writes under <checkpointDir>/<job id>/attempt-<n>.
      const written = jobs.flatMap((j) => readdirSync(path.join(checkpointDir('forgotten'), j.id), { recursive: true }).filter((f) => String(f).endsWith('.pt')));
      expect({
        jobsLeftInRedis: left,
        checkpointsWritten: written.length,
        registered: again.length,
        registeredWithoutSayingJobWasGone: again.filter((r) => (r.lineage.jobRecord as { inRedis?: boolean } | undefined)?.inRedis !== false).length,
        duplicated: again.length - new Set(again.map((r) => r.training_job_id)).size,
      }).toEqual({ jobsLeftInRedis: 0, checkpointsWritten: JOBS, registered: JOBS, registeredWithoutSayingJobWasGone: 0, duplicated: 0 });
    });
  });
});
