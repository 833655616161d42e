// Fault: when a job ends, everything it started ends. A real `caelum-scheduler worker` process
// runs a trainer whose helper escapes the trainer's process group (a new session, SIGTERM
// ignored), as a daemonising data loader or a `torchrun` child does.
//   - Nemesis: kill -9 of the worker mid-job, then the worker started again on the same host.
//     Counted: helpers that outlived the worker (must be 1, or the nemesis did nothing),
//     processes of the dead run left once the new worker started, processes of the rerun left
//     when its job completed, completions of the job.
//   - Not a nemesis but its mirror: a second worker for the same host starting in the same
//     process while the first runs a job. Counted: processes of the live run its sweep ended.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import type { ResultPromise } from 'execa';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFleet, type LoadedFleet } from '../../src/config/load-fleet.js';
import { enqueue } from '../../src/queues/enqueue.js';
import { QueueSet } from '../../src/queues/queue-set.js';
import { listWorkers } from '../../src/queues/worker-status.js';
import { processesOfRun } from '../../src/workers/job-processes.js';
import { createTestSchema, type TestSchema } from '../helpers/db.js';
import { REPO_ROOT } from '../helpers/fleet.js';
import { testLogger } from '../helpers/logger.js';
import { deletePrefix } from '../helpers/redis.js';
import { REDIS_URL, uniqueName } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { spawnWorkerProcess, startTestWorkers } from '../helpers/workers.js';

const sandbox = mkdtempSync(path.join(os.tmpdir(), 'caelum-fault-orphans-'));
const configFile = path.join(sandbox, 'fleet.config.mjs');
const prefix = uniqueName('faultorphans');
const HOST = 'host-o';
const example = (name: string) => ({ command: ['node', `examples/${name}.mjs`], cwd: REPO_ROOT, timeoutSeconds: 30 });

let db: TestSchema;
let fleet: LoadedFleet;
let redis: Redis;
let queues: QueueSet;
const workers: ResultPromise[] = [];
/** Every process our trainers started, to end by pid whatever happens. */
const started = new Set<number>();

beforeAll(async () => {
  mkdirSync(path.join(sandbox, 'data'));
  const config = {
    hosts: { [HOST]: { gpus: [{ index: 0, name: 'Fake GPU', memoryMiB: 8192 }], cpuSlots: 1 } },
    pools: { all: [HOST] },
    models: {
      escaper: {
        pool: 'all',
        gpusPerRun: 1,
        train: { command: ['node', 'test/fixtures/escaping-trainer.mjs'], cwd: REPO_ROOT, timeoutSeconds: 30, attempts: 1 },
        validate: example('validator'),
        checkpointDir: path.join(sandbox, 'checkpoints'),
      },
    },
    backtest: { pool: 'all', ...example('backtester') },
    dataSync: { pool: 'all', ...example('data-syncer') },
  };
  writeFileSync(configFile, `export default ${JSON.stringify(config)};\n`);
  fleet = await loadFleet(configFile);
  db = await createTestSchema('faultorphans');
  redis = new Redis(REDIS_URL);
  queues = new QueueSet(fleet, redis, prefix, testLogger);
});
afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await Promise.all(workers);
  for (const pid of started) if (running(pid)) process.kill(pid, 'SIGKILL');
  await queues?.close();
  redis?.disconnect();
  await deletePrefix(prefix);
  await db?.drop();
  rmSync(sandbox, { recursive: true, force: true });
});

function startWorkerProcess(): ResultPromise {
  const child = spawnWorkerProcess(
    HOST,
    { prefix, schema: db.schema, configFile },
    { CAELUM_DATA_DIR: path.join(sandbox, 'data'), CAELUM_KILL_GRACE_MS: '500' },
  );
  workers.push(child);
  return child;
}

/** Whether pid is a running process: not gone, and not a zombie waiting for init to reap it. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

interface TrainerProgress {
  pid: number;
  helperPid: number;
  runId: string;
}

/** The trainer's last progress line, once it has sent one (BullMQ's progress is 0 before). */
const progressOf = (job: Job | undefined) => ((job?.progress as Partial<TrainerProgress> | undefined)?.runId ? (job!.progress as TrainerProgress) : undefined);

const getJob = (id: string) => queues.get('training-escaper')!.queue.getJob(id) as Promise<Job | undefined>;
const train = (epochs: number) =>
  enqueue({ fleet, queues }, 'training', { model: 'escaper', params: { epochs, epoch_ms: 250 } }, { reason: 'api', by: 'fault test', at: new Date().toISOString() });
const finished = (id: string, timeoutMs: number) =>
  waitFor(`job ${id} to finish`, async () => {
    const job = await getJob(id);
    return job?.finishedOn ? job : undefined;
  }, { timeoutMs });

/** The processes of a run still running: those carrying its mark, and its two known pids. */
async function leftOf(run: TrainerProgress): Promise<number> {
  const marked = new Set(await processesOfRun(run.runId));
  for (const pid of [run.pid, run.helperPid]) if (running(pid)) marked.add(pid);
  return marked.size;
}

describe('when a job ends, everything it started ends', () => {
  it('a restarted worker ends the escaped helper of the job its killed predecessor ran; a job that completes leaves nothing', async () => {
    const first = startWorkerProcess();
    await waitFor('the first worker to beat', async () => (await listWorkers(redis, prefix)).some((w) => w.pid === first.pid));
    const { id } = await train(12);
    const dead = await waitFor('the trainer to report its helper', async () => progressOf(await getJob(id)));
    started.add(dead.pid).add(dead.helperPid);
    expect(running(dead.helperPid)).toBe(true);

    // Nemesis: kill -9 of the worker. Its trainer dies with it (PR_SET_PDEATHSIG); the helper does not.
    first.kill('SIGKILL');
    await first;
    await waitFor('the trainer to die with its worker', () => !running(dead.pid), { timeoutMs: 5000 });
    const escaped = running(dead.helperPid) ? 1 : 0;

    const second = startWorkerProcess();
    await waitFor('no process of the dead run to be left', async () => (await leftOf(dead)) === 0, { timeoutMs: 15_000 });
    await waitFor('the second worker to beat', async () => (await listWorkers(redis, prefix)).some((w) => w.pid === second.pid));

    // The job runs again on the new worker, and its helper ends with it, before the job completes.
    const done = await finished(id, 40_000);
    const rerun = progressOf(done)!;
    started.add(rerun.pid).add(rerun.helperPid);
    const leftOfRerun = await leftOf(rerun);

    expect({
      escapedTheWorker: escaped,
      leftOfDeadRun: await leftOf(dead),
      rerunWasANewRun: rerun.runId !== dead.runId ? 1 : 0,
      leftOfCompletedRun: leftOfRerun,
      completed: (await done.getState()) === 'completed' ? 1 : 0,
    }).toEqual({ escapedTheWorker: 1, leftOfDeadRun: 0, rerunWasANewRun: 1, leftOfCompletedRun: 0, completed: 1 });
  });

  it("a worker starting beside a live one of the same process sweeps none of the live one's runs", async () => {
    const live = await startTestWorkers(fleet, prefix, db.pool, [HOST]);
    let beside: Awaited<ReturnType<typeof startTestWorkers>> | undefined;
    try {
      const { id } = await train(8);
      const run = await waitFor('the trainer to report its helper', async () => progressOf(await getJob(id)));
      started.add(run.pid).add(run.helperPid);
      const before = await leftOf(run);
      beside = await startTestWorkers(fleet, prefix, db.pool, [HOST]);
      const afterSweep = await leftOf(run);
      const done = await finished(id, 30_000);
      expect({ runningBefore: before, endedBySweep: before - afterSweep, completed: (await done.getState()) === 'completed' ? 1 : 0 }).toEqual({
        runningBefore: 2,
        endedBySweep: 0,
        completed: 1,
      });
    } finally {
      await beside?.close();
      await live.close();
    }
  });
});
