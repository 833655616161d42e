// Fault: a GPU that fails its health check is not leased, is reported, and comes back when
// healthy. The worker runs in this process against the real Redis and Postgres, with the fake
// nvidia-smi of the tests answering from a JSON file this test rewrites, and a decoy kernel log
// in this test's temp folder.
//   - Nemeses: an uncorrectable ECC error on GPU 0; GPU 0 over the temperature limit, then at
//     and just above the line it must cool below, with an nvidia-smi that refuses a field (an
//     older driver) and then fails; an XID line on GPU 1, then one after the log is truncated;
//     a GPU nvidia-smi cannot reach, then leaves out.
//   - Counted: jobs started on an unhealthy GPU, checks a held GPU sat through, heartbeats in
//     which a GPU with only [N/A] fields was held, nvidia-smi calls with the refused field.
import { appendFileSync, chmodSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetInput } from '../../src/config/fleet-schema.js';
import { parseFleet, type LoadedFleet } from '../../src/config/load-fleet.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { enqueue } from '../../src/queues/enqueue.js';
import type { GpuStatus, WorkerStatus } from '../../src/queues/worker-status.js';
import type { JobRunResult } from '../../src/workers/processors/result.js';
import type { RunningWorkers } from '../../src/workers/start-workers.js';
import { asReader, startApi, type ApiHarness } from '../helpers/api.js';
import { createTestSchema, type TestSchema } from '../helpers/db.js';
import { REPO_ROOT } from '../helpers/fleet.js';
import { uniqueName } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorkers } from '../helpers/workers.js';

const sandbox = mkdtempSync(path.join(os.tmpdir(), 'caelum-fault-gpu-health-'));
const state = path.join(sandbox, 'gpus.json');
const nvidiaSmi = path.join(sandbox, 'nvidia-smi');
const failSwitch = path.join(sandbox, 'fail');
const failures = path.join(sandbox, 'failures');
const healthCalls = path.join(sandbox, 'health-calls');
const kernelLog = path.join(sandbox, 'kern.log');
const HOST = 'host-h';
const ECC = 'ecc.errors.uncorrected.volatile.total';
const TEMPERATURE = 'temperature.gpu';
/** Every health field [N/A], as a GeForce without ECC reports them (the fake's default but the temperature). */
const ALL_NA = { [ECC]: '[N/A]', 'retired_pages.pending': '[N/A]', 'remapped_rows.failure': '[N/A]', [TEMPERATURE]: '[N/A]' };
const example = (name: string) => ({ command: ['node', `examples/${name}.mjs`], timeoutSeconds: 60 });

const fleetInput = (gpuHealth: Pick<FleetInput, 'gpuHealth'> & { host?: NonNullable<FleetInput['hosts'][string]>['gpuHealth'] } = {}): FleetInput => ({
  hosts: { [HOST]: { gpus: [0, 1].map((index) => ({ index, name: 'Fake GPU', memoryMiB: 8192 })), cpuSlots: 1, ...(gpuHealth.host ? { gpuHealth: gpuHealth.host } : {}) } },
  pools: { all: [HOST] },
  models: {
    gpu: { pool: 'all', gpusPerRun: 1, train: { ...example('trainer'), attempts: 1 }, validate: example('validator'), checkpointDir: path.join(sandbox, 'checkpoints') },
  },
  backtest: { pool: 'all', ...example('backtester') },
  dataSync: { pool: 'all', ...example('data-syncer') },
  ...(gpuHealth.gpuHealth ? { gpuHealth: gpuHealth.gpuHealth } : {}),
});
const fleetWith = (health: Parameters<typeof fleetInput>[0] = {}): LoadedFleet => parseFleet(fleetInput(health), '(GPU health fault test)', REPO_ROOT);
const fleet = fleetWith();

/** What the fake nvidia-smi reports next; written whole, so it never reads half a file. */
function setGpus(gpus: Record<string, unknown>[], rejectFields: string[] = []): void {
  writeFileSync(`${state}.new`, JSON.stringify({ gpus, rejectFields }));
  renameSync(`${state}.new`, state);
}
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

let db: TestSchema;
let api: ApiHarness;

beforeAll(async () => {
  writeFileSync(
    nvidiaSmi,
    // While the file `fail` exists it fails as a broken driver does, and notes each failed call;
    // otherwise it notes each health query, then answers from the state file.
    `#!/bin/sh\nif [ -e '${failSwitch}' ]; then echo "$*" >> '${failures}'; echo 'NVIDIA-SMI has failed' >&2; exit 9; fi\n` +
      `case "$*" in *pci.bus_id*) echo "$*" >> '${healthCalls}';; esac\n` +
      `FAKE_NVIDIA_SMI_GPUS='${state}' exec '${process.execPath}' '${path.join(REPO_ROOT, 'test/fixtures/fake-nvidia-smi.mjs')}' "$@"\n`,
  );
  chmodSync(nvidiaSmi, 0o755);
  db = await createTestSchema('faultgpuhealth');
  api = await startApi({ fleet, prefix: uniqueName('faultgpuhealth'), schema: db.schema });
});
afterAll(async () => {
  await api?.close();
  await db?.drop();
  rmSync(sandbox, { recursive: true, force: true });
});

const workerStatus = async (): Promise<WorkerStatus | undefined> =>
  ((await api.app.inject({ method: 'GET', url: '/api/workers', headers: asReader })).json() as { workers: WorkerStatus[] }).workers[0];
const gpu = async (index: number): Promise<GpuStatus | undefined> => (await workerStatus())?.gpus.find((g) => g.index === index);
/** The worker's status as published after this moment: it reflects every check that ended before. */
const statusAfter = async (t: number): Promise<WorkerStatus> =>
  waitFor('a heartbeat after the checks', async () => {
    const s = await workerStatus();
    return s && Date.parse(s.at) > t ? s : undefined;
  });
/** Waits until `n` more health checks than now have asked nvidia-smi (each one reads the state written before it). */
const checksPass = async (n: number) => {
  const from = lines(healthCalls).length;
  await waitFor(`${n} more health checks`, () => lines(healthCalls).length >= from + n);
  return Date.now();
};
const view = async (id: string) => (await api.app.inject({ method: 'GET', url: `/api/jobs/${id}`, headers: asReader })).json() as { waitingFor?: string };
const getJob = (id: string) => api.queues.get('training-gpu')!.queue.getJob(id) as Promise<Job | undefined>;
const finished = (id: string) => waitFor(`job ${id} to finish`, async () => ((await getJob(id))?.finishedOn ? getJob(id) : undefined), { timeoutMs: 30_000 });
const train = async (params: Record<string, number>) =>
  (await enqueue({ fleet, queues: api.queues }, 'training', { model: 'gpu', params }, { reason: 'api', by: 'GPU health fault test', at: new Date().toISOString() })).id;
const gauge = async (metrics: Metrics, gpuIndex: number, reason: string) => {
  const text = await metrics.registry.getSingleMetricAsString('caelum_gpu_unhealthy');
  return text.split('\n').find((l) => l.startsWith(`caelum_gpu_unhealthy{host="${HOST}",gpu="${gpuIndex}",reason="${reason}"}`))?.split(' ')[1];
};

async function withWorkers<T>(healthFleet: LoadedFleet, metrics: Metrics, body: (workers: RunningWorkers) => Promise<T>): Promise<T> {
  const workers = await startTestWorkers(healthFleet, api.prefix, db.pool, [HOST], { gpuCheckMs: 200, heartbeatMs: 200 }, nvidiaSmi, { metrics });
  try {
    return await body(workers);
  } finally {
    rmSync(failSwitch, { force: true });
    await workers.close();
  }
}

describe('a GPU with an uncorrectable ECC error', () => {
  it('is not leased, is reported by /api/workers, waitingFor, system health and metrics, and is leased once healthy', async () => {
    const ECC_REASON = '1 uncorrectable ECC error since the driver loaded';
    setGpus([{ index: 0, [ECC]: 1 }, { index: 1, ...ALL_NA }]);
    const metrics = createMetrics({ defaults: false });
    await withWorkers(fleet, metrics, async (workers) => {
      const unhealthy = await waitFor('GET /api/workers to say GPU 0 is unhealthy', async () => (await gpu(0))?.unhealthy);
      expect(unhealthy.reasons).toEqual([ECC_REASON]);
      expect(Number.isNaN(Date.parse(unhealthy.since))).toBe(false);

      // A job takes the first free GPU: GPU 1 (all [N/A]) while GPU 0 is held.
      const long = await train({ epochs: 10_000, epoch_ms: 100 });
      await waitFor('the long job to run on GPU 1', async () => (await gpu(1))?.jobId === long);
      const waiting = await train({ epochs: 1, epoch_ms: 50 });
      const reason = await waitFor('the second job to wait on the unhealthy GPU', async () => {
        const why = (await view(waiting)).waitingFor;
        return why?.includes('unhealthy') ? why : undefined;
      });
      expect(reason).toBe(`waiting for 1 free GPU in pool all; ${HOST} has 0 free (GPU 0 unhealthy: ${ECC_REASON})`);

      const health = (await api.app.inject({ method: 'GET', url: '/api/system/health', headers: asReader })).json() as {
        status: string;
        warnings: string[];
        workers: { gpus: { index: number; busy: boolean; jobId: string | null; unhealthy?: unknown }[] }[];
      };
      expect(health.status).toBe('degraded');
      expect(health.warnings).toContain(`GPU 0 of ${HOST} is not leased, it failed its health check: ${ECC_REASON}`);
      expect(health.workers[0]?.gpus[0]).toMatchObject({ index: 0, busy: true, jobId: null, unhealthy: { reasons: [ECC_REASON] } });
      expect([await gauge(metrics, 0, 'ecc'), await gauge(metrics, 0, 'temperature'), await gauge(metrics, 1, 'ecc')]).toEqual(['1', '0', '0']);

      // Checks go on with the job waiting; GPU 1, whose every field is [N/A], is never held.
      let naHeld = 0;
      const beats = new Set<string>();
      const from = lines(healthCalls).length;
      await waitFor('five more checks and heartbeats', async () => {
        const s = await workerStatus();
        if (s) beats.add(s.at);
        if (s?.gpus[1]?.unhealthy) naHeld++;
        return lines(healthCalls).length >= from + 5 && beats.size >= 3;
      });
      const waitedThrough = (await getJob(waiting))?.processedOn === undefined ? lines(healthCalls).length - from : 0;

      const healedAt = Date.now();
      setGpus([{ index: 0, [ECC]: 0 }, { index: 1, ...ALL_NA }]);
      const done = await finished(waiting);
      const result = done.returnvalue as JobRunResult;
      await waitFor('GPU 0 to be reported healthy', async () => {
        const g0 = await gpu(0);
        return g0 !== undefined && g0.unhealthy === undefined;
      });
      const eccAfter = await gauge(metrics, 0, 'ecc');

      workers.workers[0]!.cancel(long);
      await finished(long);

      expect({
        startedWhileUnhealthy: (done.processedOn ?? 0) < healedAt ? 1 : 0,
        checksWaitedThrough: waitedThrough >= 5,
        ranOn: result.gpus,
        naHeld,
        eccGaugeAfter: eccAfter,
      }).toEqual({ startedWhileUnhealthy: 0, checksWaitedThrough: true, ranOn: [0], naHeld: 0, eccGaugeAfter: '0' });
    });
  });
});

describe('a GPU over the temperature limit', () => {
  it('is held until it cools below the limit minus the hysteresis; an older driver and a failing nvidia-smi change nothing', async () => {
    const HOT = '91 °C, over the limit of 85 °C (leased again below 80 °C)';
    // An older driver: it refuses remapped_rows.failure, and the check goes on without it.
    const refused = ['remapped_rows.failure'];
    const metrics = createMetrics({ defaults: false });
    setGpus([{ index: 0, [TEMPERATURE]: 91 }, { index: 1 }], refused);
    const callsBefore = lines(healthCalls).length;
    await withWorkers(fleet, metrics, async () => {
      expect((await waitFor('GPU 0 to be held for heat', async () => (await gpu(0))?.unhealthy)).reasons).toEqual([HOT]);
      expect(await gauge(metrics, 0, 'temperature')).toBe('1');

      // Below the limit, not yet below the line: still held, and a job goes to GPU 1.
      setGpus([{ index: 0, [TEMPERATURE]: 82 }, { index: 1 }], refused);
      const cooler = await statusAfter(await checksPass(3));
      const job = await train({ epochs: 1, epoch_ms: 50 });
      const ranOn = ((await finished(job)).returnvalue as JobRunResult).gpus;
      setGpus([{ index: 0, [TEMPERATURE]: 80 }, { index: 1 }], refused);
      const atTheLine = await statusAfter(await checksPass(3));

      // nvidia-smi breaks, then the GPU cools. A failed health check first: checks do not
      // overlap, so none that could still read the state file is in flight.
      const failedChecks = () => lines(failures).filter((c) => c.includes('pci.bus_id')).length;
      const failed = failedChecks();
      writeFileSync(failSwitch, '');
      await waitFor('a failed check', () => failedChecks() > failed);
      setGpus([{ index: 0, [TEMPERATURE]: 70 }, { index: 1 }], refused);
      await waitFor('three more failed checks', () => failedChecks() >= failed + 4);
      const whileFailing = await statusAfter(Date.now());
      rmSync(failSwitch);

      await waitFor('GPU 0 to be leasable once nvidia-smi answers 70 °C', async () => {
        const g0 = await gpu(0);
        return g0 !== undefined && g0.unhealthy === undefined;
      });
      const calls = lines(healthCalls).slice(callsBefore);
      expect({
        cooler: cooler.gpus[0]?.unhealthy?.reasons,
        ranOn,
        atTheLine: atTheLine.gpus[0]?.unhealthy?.reasons,
        whileFailing: whileFailing.gpus[0]?.unhealthy?.reasons,
        temperatureGauge: await gauge(metrics, 0, 'temperature'),
        callsWithRefusedField: calls.filter((c) => c.includes('remapped_rows.failure')).length,
      }).toEqual({ cooler: [HOT], ranOn: [1], atTheLine: [HOT], whileFailing: [HOT], temperatureGauge: '0', callsWithRefusedField: 1 });
    });
  });
});

describe('an XID in the kernel log', () => {
  it('holds the GPU on that bus for the hold time after it, and is read again after the log is truncated', async () => {
    // Before the worker starts: not read (it cannot tell how old it is).
    writeFileSync(kernelLog, 'Mar  3 09:00:00 host-h kernel: NVRM: Xid (PCI:0000:02:00): 79, pid=1, GPU has fallen off the bus.\n');
    setGpus([{ index: 0 }, { index: 1 }]);
    // The fleet's kernel log does not exist; the host's own setting wins.
    const healthFleet = fleetWith({ gpuHealth: { kernelLog: path.join(sandbox, 'no-such-log') }, host: { kernelLog, xidHoldSeconds: 2 } });
    await withWorkers(healthFleet, createMetrics({ defaults: false }), async () => {
      const before = await statusAfter(await checksPass(3));

      const appendedAt = performance.now();
      appendFileSync(
        kernelLog,
        // XID 45 follows every killed CUDA process: it holds nothing. XID 79 on GPU 1's bus (the fake's 00000000:02:00.0).
        'Mar  3 10:00:00 host-h kernel: NVRM: Xid (PCI:0000:01:00): 45, pid=4242, Ch 00000010\n' +
          'Mar  3 10:00:01 host-h kernel: [ 4909.92] NVRM: Xid (PCI:0000:02:00): 79, pid=1896, GPU has fallen off the bus.\n',
      );
      const held = await waitFor('GPU 1 to be held for the XID', async () => (await gpu(1))?.unhealthy);
      const gpu0WhileHeld = (await gpu(0))?.unhealthy;
      await waitFor('GPU 1 to come back after the hold', async () => {
        const g1 = await gpu(1);
        return g1 !== undefined && g1.unhealthy === undefined;
      });
      const heldForMs = performance.now() - appendedAt;

      // copytruncate: the log is emptied and written again from its start.
      writeFileSync(kernelLog, 'Mar  3 11:00:00 host-h kernel: NVRM: Xid (PCI:0000:01:00): 48, pid=7, An uncorrectable double bit error\n');
      const afterTruncation = await waitFor('GPU 0 to be held for the XID after truncation', async () => (await gpu(0))?.unhealthy);

      expect(before.gpus.map((g) => g.unhealthy)).toEqual([undefined, undefined]);
      expect(held.reasons).toHaveLength(1);
      expect(held.reasons[0]).toMatch(/^XID 79 in the kernel log at \S+; leased again 2 s after the last XID$/);
      expect(gpu0WhileHeld).toBeUndefined();
      expect(heldForMs).toBeGreaterThanOrEqual(2000);
      expect(heldForMs).toBeLessThan(10_000);
      expect(afterTruncation.reasons[0]).toMatch(/^XID 48 /);
    });
  });
});

describe('a GPU nvidia-smi cannot reach', () => {
  it('is held while nvidia-smi says it cannot reach it or leaves it out, and comes back when it reports it', async () => {
    setGpus([{ index: 0 }, { index: 1 }]);
    const metrics = createMetrics({ defaults: false });
    await withWorkers(fleet, metrics, async () => {
      await checksPass(2);
      setGpus([{ index: 0 }, { index: 1, lost: true }]);
      const unreachable = await waitFor('GPU 1 to be held as unreachable', async () => (await gpu(1))?.unhealthy);
      setGpus([{ index: 0 }]);
      const missing = await waitFor('GPU 1 to be held as missing', async () => {
        const u = (await gpu(1))?.unhealthy;
        return u && u.reasons[0] !== unreachable.reasons[0] ? u : undefined;
      });
      const lostGauge = await gauge(metrics, 1, 'lost');
      setGpus([{ index: 0 }, { index: 1 }]);
      await waitFor('GPU 1 to come back', async () => {
        const g1 = await gpu(1);
        return g1 !== undefined && g1.unhealthy === undefined;
      });
      expect(unreachable.reasons).toEqual(['nvidia-smi cannot reach it: Unable to determine the device handle for GPU0000:02:00.0: Unknown Error']);
      expect(missing.reasons).toEqual(['nvidia-smi does not report it (fallen off the bus?)']);
      expect(missing.since).toBe(unreachable.since);
      expect(lostGauge).toBe('1');
      expect((await gpu(0))?.unhealthy).toBeUndefined();
    });
  });
});
