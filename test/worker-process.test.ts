// The worker as an operator runs it: `caelum-scheduler worker --host <id>` as a real process,
// killed with -9 in the middle of a job; and GPU discovery through an nvidia-smi program.
import path from 'node:path';
import { QueueEvents, type Job } from 'bullmq';
import type { ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet, type LoadedFleet } from '../src/config/load-fleet.js';
import { enqueue } from '../src/queues/enqueue.js';
import { QueueSet } from '../src/queues/queue-set.js';
import { listWorkers } from '../src/queues/worker-status.js';
import type { JobRunResult } from '../src/workers/processors/result.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { testLogger } from './helpers/logger.js';
import { deletePrefix } from './helpers/redis.js';
import { DATABASE_URL, REDIS_URL, uniqueName } from './helpers/servers.js';
import { createTestSchema, type TestSchema } from './helpers/db.js';
import { pidAlive, waitFor } from './helpers/wait.js';
import { spawnWorkerProcess, startTestWorkers } from './helpers/workers.js';
import { childBaseEnv } from '../src/workers/child-env.js';
import { SECRET_VARIABLES } from '../src/config/secret-files.js';

const CONFIG = path.join(REPO_ROOT, 'test/fixtures/workers.config.mts');
const prefix = uniqueName('workerproc');
let fleet: LoadedFleet;
let redis: Redis;
let queues: QueueSet;
const children: ResultPromise[] = [];

let db: TestSchema;

beforeAll(async () => {
  db = await createTestSchema('workerproc');
  fleet = await loadFleet(CONFIG);
  redis = new Redis(REDIS_URL);
  queues = new QueueSet(fleet, redis, prefix, testLogger);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await queues.close();
  redis.disconnect();
  await deletePrefix(prefix);
  await db.drop();
});

function startWorkerProcess(host: string, extra: Record<string, string> = {}): ResultPromise {
  const child = spawnWorkerProcess(host, { prefix, schema: db.schema, configFile: CONFIG }, extra);
  children.push(child);
  return child;
}

/** Stops the worker processes this file started that still run, so the next test's job goes to its own. */
async function stopStartedWorkers(): Promise<void> {
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of running) c.kill('SIGTERM');
  await Promise.all(running);
}

describe('kill -9 of a worker in the middle of a job', () => {
  it('the job runs again on a live worker and completes exactly once; the orphaned trainer dies', async () => {
    const eventsConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const events = new QueueEvents('training-yield', { connection: eventsConnection, prefix });
    await events.waitUntilReady();
    const completions: string[] = [];
    events.on('completed', ({ jobId }) => completions.push(jobId));
    try {
      const first = startWorkerProcess('host-b');
      await waitFor('the first worker to beat', async () => (await listWorkers(redis, prefix)).some((w) => w.pid === first.pid));
      const { id } = await enqueue({ fleet, queues }, 'training', { model: 'yield', params: { epochs: 8, epoch_ms: 300 } }, {
        reason: 'api',
        by: 'test',
        at: new Date().toISOString(),
      });
      const job = (): Promise<Job> => queues.get('training-yield')!.queue.getJob(id) as Promise<Job>;
      const trainerPid = await waitFor('the trainer to report progress', async () => ((await job()).progress as { pid?: number })?.pid);

      first.kill('SIGKILL');
      await first;
      // The trainer dies with its worker, at once.
      await waitFor('the orphaned trainer to die', () => !pidAlive(trainerPid), { timeoutMs: 3000 });
      // The dead worker drops off the list within three heartbeat periods.
      await waitFor('the dead worker to drop off', async () => !(await listWorkers(redis, prefix)).some((w) => w.pid === first.pid), {
        timeoutMs: 3 * 300 + 500,
      });

      startWorkerProcess('host-b');
      const done = await waitFor('the job to complete', async () => ((await job()).finishedOn ? job() : undefined), { timeoutMs: 30_000 });
      expect(await done.getState()).toBe('completed');
      const result = done.returnvalue as JobRunResult;
      expect(result.checkpoints).toHaveLength(1);
      expect((done.progress as { pid: number }).pid).not.toBe(trainerPid);
      await waitFor('the completed event', () => completions.includes(id));
      expect(completions.filter((c) => c === id)).toHaveLength(1);
    } finally {
      await events.close();
      eventsConnection.disconnect(); // QueueEvents does not close a connection it is handed
    }
  });
});

describe('a job that stalls twice', () => {
  it('is marked as stalled too often, yet runs a third time: the host worker does not act on the mark', async () => {
    await stopStartedWorkers();
    const first = startWorkerProcess('host-b');
    await waitFor('the first worker to beat', async () => (await listWorkers(redis, prefix)).some((w) => w.pid === first.pid));
    const { id } = await enqueue({ fleet, queues }, 'training', { model: 'yield', params: { epochs: 200, epoch_ms: 300 } }, {
      reason: 'api',
      by: 'test',
      at: new Date().toISOString(),
    });
    const job = (): Promise<Job> => queues.get('training-yield')!.queue.getJob(id) as Promise<Job>;
    const trainerOf = async () => ((await job()).progress as { pid?: number } | undefined)?.pid;

    const firstTrainer = await waitFor('the first run to report progress', trainerOf);
    first.kill('SIGKILL');
    await first;
    await waitFor('the first trainer to die', () => !pidAlive(firstTrainer), { timeoutMs: 3000 });

    // The stalled check of the next worker hands the job back once: it runs again.
    const second = startWorkerProcess('host-b');
    const secondTrainer = await waitFor('the second run to report progress', async () => {
      const pid = await trainerOf();
      return pid !== undefined && pid !== firstTrainer ? pid : undefined;
    }, { timeoutMs: 30_000 });
    second.kill('SIGKILL');
    await second;
    await waitFor('the second trainer to die', () => !pidAlive(secondTrainer), { timeoutMs: 3000 });

    // A live worker again, whose stalled check finds the job stalled a second time. BullMQ only
    // marks it (deferredFailure) and hands it back: a Worker with a processor would fail it on
    // the next fetch, but the host worker fetches with getNextJob itself and runs it again.
    const third = startWorkerProcess('host-b');
    const thirdTrainer = await waitFor('a third run to report progress', async () => {
      const pid = await trainerOf();
      return pid !== undefined && pid !== firstTrainer && pid !== secondTrainer ? pid : undefined;
    }, { timeoutMs: 30_000 });
    const again = await job();
    expect(again.deferredFailure).toBe('job stalled more than allowable limit');
    expect(again.stalledCounter).toBe(2);
    expect(again.attemptsStarted).toBe(3);
    expect(await again.getState()).toBe('active');
    third.kill('SIGKILL');
    await third;
    await waitFor('the third trainer to die', () => !pidAlive(thirdTrainer), { timeoutMs: 3000 });
  });
});

describe('the output of a job', () => {
  it("goes to the job's log, not to the worker's own output", async () => {
    await stopStartedWorkers();
    // At debug, so that anything the worker would say about the child's lines shows.
    const worker = startWorkerProcess('host-b', { LOG_LEVEL: 'debug' });
    try {
      await waitFor('the worker to beat', async () => (await listWorkers(redis, prefix)).some((w) => w.pid === worker.pid));
      const { id } = await enqueue({ fleet, queues }, 'training', { model: 'yield', params: { epochs: 3, epoch_ms: 50 } }, {
        reason: 'api',
        by: 'test',
        at: new Date().toISOString(),
      });
      const queue = queues.get('training-yield')!.queue;
      const done = await waitFor('the job to finish', async () => {
        const j = await queue.getJob(id);
        return j?.finishedOn ? j : undefined;
      }, { timeoutMs: 30_000 });
      expect(await done.getState()).toBe('completed');
      // The trainer's own stdout lines, not protocol messages.
      const marker = 'training yield for 3 epochs on CUDA_VISIBLE_DEVICES=';
      const { logs } = await queue.getJobLogs(id);
      expect(logs.some((l) => l.includes(marker))).toBe(true);
      expect(logs.some((l) => /^epoch 3\/3 loss=/.test(l))).toBe(true);
      worker.kill('SIGTERM');
      const result = await worker;
      expect(result.exitCode).toBe(0);
      const output = `${String(result.stdout)}${String(result.stderr)}`;
      // The worker did log about the job, at debug and info ...
      expect(output).toContain(id);
      // ... but none of the child's lines.
      expect(output).not.toContain('training yield for 3 epochs');
      expect(output).not.toMatch(/epoch \d\/3 loss=/);
    } finally {
      if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    }
  });
});

describe('GPU discovery', () => {
  it('uses the GPUs nvidia-smi reports, by UUID, and not a configured GPU that is absent', async () => {
    const running = await startTestWorkers(fleet, prefix, db.pool, ['host-a'], {}, path.join(REPO_ROOT, 'test/fixtures/fake-nvidia-smi.mjs'));
    try {
      const status = await waitFor('host-a to beat', async () => (await listWorkers(redis, prefix)).find((w) => w.host === 'host-a'));
      expect(status.gpuSource).toBe('nvidia-smi');
      expect(status.gpus.map((g) => g.index)).toEqual([0]);
      const { id } = await enqueue({ fleet, queues }, 'training', { model: 'small' }, { reason: 'api', by: 'test', at: new Date().toISOString() });
      const done = await waitFor('the job', async () => {
        const j = await queues.get('training-small')!.queue.getJob(id);
        return j?.finishedOn ? j : undefined;
      });
      const child = (done.returnvalue as JobRunResult).result as { cudaVisibleDevices: string };
      expect(child.cudaVisibleDevices).toBe('GPU-5c1b8a2e-0000-4000-8000-000000000000');
    } finally {
      await running.close();
    }
  });
});

describe('the environment of a job', () => {
  it('carries none of the service secrets', () => {
    const env = childBaseEnv({
      PATH: '/usr/bin',
      HOME: '/root',
      CAELUM_API_TOKEN: 'secret',
      CAELUM_READ_TOKEN: 'r',
      DATABASE_URL: 'postgres://u:p@h/db',
      REDIS_URL: 'redis://x',
      PGPASSWORD: 'p',
      // Every secret variable, and where its file is.
      ...Object.fromEntries(SECRET_VARIABLES.flatMap((name) => [[name, 'secret'], [`${name}_FILE`, `/run/secrets/${name}`]])),
    });
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/root' });
  });
});
