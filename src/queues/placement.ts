// Placement is by queue (DESIGN.md): BullMQ cannot hand a job to one worker, so everything that
// decides whether a host may start a job is part of the identity of the queue it waits in.
// Training and deploy tests get a queue per model (a model fixes the pool and the GPUs per run);
// backtests and data syncs get one queue each, served by the hosts of their configured pool.
import { randomUUID } from 'node:crypto';
import { NAME_MAX_LENGTH, type CommandConfig } from '../config/fleet-schema.js';
import type { LoadedFleet } from '../config/load-fleet.js';
import { ValidationError } from '../errors.js';
import type { JobKind } from './kinds.js';

export interface QueueSpec {
  name: string;
  kind: JobKind;
  pool: string;
  /** Set for per-model queues. */
  model?: string;
  /** GPUs a job of this queue leases; 0 means it takes a CPU slot instead. */
  gpus: number;
  command: CommandConfig;
}

export function queueSpecs(fleet: LoadedFleet): QueueSpec[] {
  const specs: QueueSpec[] = [];
  for (const [model, m] of Object.entries(fleet.models)) {
    specs.push({ name: `training-${model}`, kind: 'training', pool: m.pool, model, gpus: m.gpusPerRun, command: m.train });
    specs.push({ name: `deploy-test-${model}`, kind: 'deploy-test', pool: m.pool, model, gpus: 0, command: m.validate });
  }
  specs.push({ name: 'backtest', kind: 'backtest', pool: fleet.backtest.pool, gpus: 0, command: fleet.backtest });
  specs.push({ name: 'data-sync', kind: 'data-sync', pool: fleet.dataSync.pool, gpus: 0, command: fleet.dataSync });
  return specs;
}

/** The queue a job of this kind goes to; an unknown model is the client's mistake (400). */
export function placeJob(fleet: LoadedFleet, kind: JobKind, payload: { model?: string }): QueueSpec {
  const specs = queueSpecs(fleet);
  if (kind === 'training' || kind === 'deploy-test') {
    const model = payload.model ?? '';
    const spec = specs.find((s) => s.kind === kind && s.model === model);
    if (!spec) {
      throw new ValidationError(`unknown model "${model}"`, [
        { path: 'model', message: `unknown model "${model}"; known: ${Object.keys(fleet.models).join(', ')}` },
      ]);
    }
    return spec;
  }
  if (payload.model !== undefined && !(payload.model in fleet.models)) {
    throw new ValidationError(`unknown model "${payload.model}"`, [
      { path: 'model', message: `unknown model "${payload.model}"; known: ${Object.keys(fleet.models).join(', ')}` },
    ]);
  }
  return specs.find((s) => s.kind === kind)!;
}

/** The queues a host's worker consumes: those of every pool it belongs to, and no other. */
export function queuesForHost(fleet: LoadedFleet, hostId: string): QueueSpec[] {
  const pools = new Set(Object.entries(fleet.pools).filter(([, hosts]) => hosts.includes(hostId)).map(([p]) => p));
  return queueSpecs(fleet).filter((s) => pools.has(s.pool));
}

// Job ids carry their queue name, so `GET /api/jobs/{id}` finds a job without a lookup table.
// Queue names never contain a dot; the suffix never does either.
const SUFFIX_MAX_LENGTH = 128;
const JOB_ID = new RegExp(`^([a-z0-9][a-z0-9-]*)\\.([A-Za-z0-9_-]{1,${SUFFIX_MAX_LENGTH}})$`);
/** The longest job id of any fleet: the longest queue name (`deploy-test-` and a model name), a dot, the suffix. */
export const MAX_JOB_ID_LENGTH = 'deploy-test-'.length + NAME_MAX_LENGTH + 1 + SUFFIX_MAX_LENGTH;

export function newJobId(queue: string, suffix: string = randomUUID()): string {
  const id = `${queue}.${suffix}`;
  if (!JOB_ID.test(id)) throw new Error(`bad job id "${id}"`);
  return id;
}

/** The queue named by a job id, or undefined for a string that is not one of our ids. */
export function queueOfJobId(id: string): string | undefined {
  return JOB_ID.exec(id)?.[1];
}
