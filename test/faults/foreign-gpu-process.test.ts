// Fault: a GPU is leased only when nothing but our own jobs computes on it. The worker runs in
// this process against the real Redis and Postgres, with the fake nvidia-smi of the tests, whose
// `--query-compute-apps` lists the live processes named in a file this test controls.
//   - Nemesis: a process that is not one of the worker's jobs (a sleeping node this test starts)
//     computes on GPU 0 while a training job waits for it, then dies. Counted: jobs started on
//     the GPU while it was blocked, heartbeats (so GPU checks) the waiting job sat through,
//     heartbeats in which the job's own trainer or helper blocked its GPU, samples in which the
//     fake nvidia-smi listed the trainer (the check had something of ours to tell apart).
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../../src/config/load-fleet.js';
import { enqueue } from '../../src/queues/enqueue.js';
import type { WorkerStatus } from '../../src/queues/worker-status.js';
import { computeApps, parseComputeApps } from '../../src/workers/gpu-discovery.js';
import { asReader, startApi, type ApiHarness } from '../helpers/api.js';
import { createTestSchema, type TestSchema } from '../helpers/db.js';
import { REPO_ROOT } from '../helpers/fleet.js';
import { uniqueName } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorkers } from '../helpers/workers.js';

const sandbox = mkdtempSync(path.join(os.tmpdir(), 'caelum-fault-gpu-'));
const apps = path.join(sandbox, 'compute-apps');
const nvidiaSmi = path.join(sandbox, 'nvidia-smi');
const failSwitch = path.join(sandbox, 'fail');
const failures = path.join(sandbox, 'failures');
/** The UUID the fake nvidia-smi gives GPU 0, the only one it reports. */
const GPU0 = 'GPU-5c1b8a2e-0000-4000-8000-000000000000';
const HOST = 'host-g';
const example = (name: string) => ({ command: ['node', `examples/${name}.mjs`], timeoutSeconds: 30 });
const fleet = parseFleet(
  {
    hosts: { [HOST]: { gpus: [0, 1].map((index) => ({ index, name: 'Fake GPU', memoryMiB: 8192 })), cpuSlots: 1 } },
    pools: { all: [HOST] },
    models: {
      gpu: {
        pool: 'all',
        gpusPerRun: 1,
        train: { command: ['node', 'test/fixtures/escaping-trainer.mjs'], timeoutSeconds: 30, attempts: 1 },
        validate: example('validator'),
        checkpointDir: path.join(sandbox, 'checkpoints'),
      },
    },
    backtest: { pool: 'all', ...example('backtester') },
    dataSync: { pool: 'all', ...example('data-syncer') },
  },
  '(foreign GPU process fault test)',
  REPO_ROOT,
);

let db: TestSchema;
let api: ApiHarness;
let foreign: ChildProcess | undefined;
const started: ChildProcess[] = [];

beforeAll(async () => {
  // The fake nvidia-smi, told where this test's list of compute processes is.
  writeFileSync(
    nvidiaSmi,
    // While the file `fail` exists it fails as a broken driver does, and counts each failure.
    `#!/bin/sh\nif [ -e '${failSwitch}' ]; then echo x >> '${failures}'; echo 'NVIDIA-SMI has failed' >&2; exit 9; fi\n` +
      `FAKE_NVIDIA_SMI_APPS='${apps}' exec '${process.execPath}' '${path.join(REPO_ROOT, 'test/fixtures/fake-nvidia-smi.mjs')}' "$@"\n`,
  );
  chmodSync(nvidiaSmi, 0o755);
  writeFileSync(apps, '');
  db = await createTestSchema('faultgpu');
  api = await startApi({ fleet, prefix: uniqueName('faultgpu'), schema: db.schema });
});
afterAll(async () => {
  if (foreign?.pid !== undefined && foreign.exitCode === null && foreign.signalCode === null) foreign.kill('SIGKILL');
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await api?.close();
  await db?.drop();
  rmSync(sandbox, { recursive: true, force: true });
});

const workerStatus = async (): Promise<WorkerStatus | undefined> =>
  ((await api.app.inject({ method: 'GET', url: '/api/workers', headers: asReader })).json() as { workers: WorkerStatus[] }).workers[0];
const view = async (id: string) => (await api.app.inject({ method: 'GET', url: `/api/jobs/${id}`, headers: asReader })).json() as { waitingFor?: string };
const getJob = (id: string) => api.queues.get('training-gpu')!.queue.getJob(id) as Promise<Job | undefined>;

describe('a GPU on which a process that is not one of our jobs computes', () => {
  it('is not leased while that process runs, GET /api/workers says why, and it is leased once the process is gone', async () => {
    // Nemesis: someone else's process computes on GPU 0.
    foreign = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const foreignPid = foreign.pid!;
    const foreignExit = new Promise((r) => foreign!.once('exit', r));
    appendFileSync(apps, `${GPU0}, ${foreignPid}\n`);

    const workers = await startTestWorkers(fleet, api.prefix, db.pool, [HOST], { gpuCheckMs: 200, heartbeatMs: 200 }, nvidiaSmi);
    try {
      const blockedBy = await waitFor('GET /api/workers to say why GPU 0 is not leased', async () => (await workerStatus())?.gpus[0]?.blockedBy);
      expect(blockedBy).toEqual({ pid: foreignPid, processName: 'node', reason: 'a process that is not a job of this worker computes on it' });

      const { id } = await enqueue({ fleet, queues: api.queues }, 'training', { model: 'gpu', params: { epochs: 10, epoch_ms: 150, compute_apps: apps } }, {
        reason: 'api',
        by: 'fault test',
        at: new Date().toISOString(),
      });
      const reason = await waitFor('the job to wait on the blocked GPU', async () => {
        const why = (await view(id)).waitingFor;
        return why?.includes('in use by a process not of this scheduler') ? why : undefined;
      });
      expect(reason).toBe(`waiting for 1 free GPU in pool all; ${HOST} has 0 free (GPU 0 in use by a process not of this scheduler)`);
      // Heartbeats go out every 200 ms, as do the GPU checks: let a few pass with the job waiting.
      const beats = new Set<string>();
      await waitFor('three heartbeats while the job waits', async () => {
        const status = await workerStatus();
        if (status?.gpus[0]?.blockedBy) beats.add(status.at);
        return beats.size >= 3;
      });
      const waitedThrough = (await getJob(id))?.processedOn === undefined ? beats.size : 0;

      foreign.kill('SIGKILL');
      await foreignExit;
      const freedAt = Date.now();

      // While the job runs, its trainer and helper are listed as computing on GPU 0: they are ours.
      let blockedByOwnJob = 0;
      let listedOwn = 0;
      const done = await waitFor('the job to finish', async () => {
        const [status, job, listed] = await Promise.all([workerStatus(), getJob(id), computeApps(nvidiaSmi)]);
        const gpu0 = status?.gpus[0];
        if (gpu0?.jobId === id && gpu0.blockedBy) blockedByOwnJob++;
        const trainer = (job?.progress as { pid?: number } | undefined)?.pid;
        if (trainer !== undefined && listed.some((a) => a.pid === trainer)) listedOwn++;
        return job?.finishedOn ? job : undefined;
      });
      // Its processes are gone with it, so nothing blocks the GPU afterwards.
      await waitFor('GPU 0 to be free and unblocked', async () => {
        const gpu0 = (await workerStatus())?.gpus[0];
        return gpu0?.jobId === null && !gpu0.blockedBy;
      });

      expect({
        startedWhileBlocked: (done.processedOn ?? 0) < freedAt ? 1 : 0,
        heartbeatsWaitedThrough: waitedThrough >= 3,
        blockedByOwnJob,
        trainerListedAsComputing: listedOwn > 0,
        completed: (await done.getState()) === 'completed' ? 1 : 0,
      }).toEqual({ startedWhileBlocked: 0, heartbeatsWaitedThrough: true, blockedByOwnJob: 0, trainerListedAsComputing: true, completed: 1 });
    } finally {
      await workers.close();
    }
  });
});

describe('when nvidia-smi fails', () => {
  it('its last answer stands: a blocked GPU stays blocked after its process ends, a free one stays free when one starts', async () => {
    const failuresSoFar = () => (existsSync(failures) ? readFileSync(failures, 'utf8').split('\n').length - 1 : 0);
    const sleeper = () => {
      const p = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      started.push(p);
      return { pid: p.pid!, exit: new Promise((r) => p.once('exit', r)), kill: () => p.kill('SIGKILL') };
    };
    rmSync(failSwitch, { force: true });
    const first = sleeper();
    writeFileSync(apps, `${GPU0}, ${first.pid}\n`);
    const workers = await startTestWorkers(fleet, api.prefix, db.pool, [HOST], { gpuCheckMs: 200, heartbeatMs: 200 }, nvidiaSmi);
    try {
      await waitFor('GPU 0 to be blocked by the first process', async () => (await workerStatus())?.gpus[0]?.blockedBy?.pid === first.pid);

      // nvidia-smi breaks, then the blocking process ends: a working one would now list nothing.
      // A failed check first: checks do not overlap, so none that could still see the process is in flight.
      const before = failuresSoFar();
      writeFileSync(failSwitch, '');
      await waitFor('a failed check', () => failuresSoFar() > before);
      first.kill();
      await first.exit;
      await waitFor('three more failed checks', () => failuresSoFar() >= before + 4);
      const stillBlocked = await waitFor('a heartbeat after them', async () => (await workerStatus())?.gpus[0]);
      expect(stillBlocked.blockedBy?.pid).toBe(first.pid);

      // It works again: the GPU is free. (So the check above could have seen it freed.)
      rmSync(failSwitch);
      await waitFor('GPU 0 to be free once nvidia-smi answers', async () => {
        const gpu0 = (await workerStatus())?.gpus[0];
        return gpu0 !== undefined && !gpu0.blockedBy;
      });

      // It breaks again, and a foreign process starts computing: the GPU stays free as last reported.
      const from = failuresSoFar();
      writeFileSync(failSwitch, '');
      await waitFor('a failed check', () => failuresSoFar() > from);
      const second = sleeper();
      writeFileSync(apps, `${GPU0}, ${second.pid}\n`);
      await waitFor('three more failed checks', () => failuresSoFar() >= from + 4);
      const stillFree = await waitFor('a heartbeat after them', async () => (await workerStatus())?.gpus[0]);
      expect(stillFree.blockedBy).toBeFalsy();

      rmSync(failSwitch);
      await waitFor('GPU 0 to be blocked once nvidia-smi answers', async () => (await workerStatus())?.gpus[0]?.blockedBy?.pid === second.pid);
      second.kill();
      await second.exit;
    } finally {
      rmSync(failSwitch, { force: true });
      await workers.close();
    }
  });
});

describe('parseComputeApps', () => {
  it('reads gpu_uuid, pid, process_name lines, a name with commas whole, and skips what is not one', () => {
    const csv = [`${GPU0}, 4242, /usr/bin/python3`, `${GPU0}, 77, python train.py --a,b`, '', 'No running processes found', `${GPU0}, [N/A], x`].join('\n');
    expect(parseComputeApps(csv)).toEqual([
      { gpuUuid: GPU0, pid: 4242, processName: '/usr/bin/python3' },
      { gpuUuid: GPU0, pid: 77, processName: 'python train.py --a,b' },
    ]);
  });
});
