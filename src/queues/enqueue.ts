// The one enqueue function: the API, the CLI and the scheduler all come through here, so a
// payload is validated, placed and stored the same way whoever sends it.
import type { LoadedFleet } from '../config/load-fleet.js';
import { parseInput } from '../validation.js';
import type { JobKind } from './kinds.js';
import { payloadSchemas, type JobData, type Trigger } from './payloads.js';
import { newJobId, placeJob } from './placement.js';
import type { QueueSet } from './queue-set.js';

export interface EnqueueDeps {
  fleet: LoadedFleet;
  queues: QueueSet;
}

export interface EnqueueOptions {
  /** Suffix of the job id; the scheduler derives it from (schedule, fire time) for exactly-once. */
  idSuffix?: string;
  delayMs?: number;
}

export interface EnqueuedJob {
  id: string;
  kind: JobKind;
  queue: string;
  state: 'waiting' | 'delayed';
}

export function parsePayload(kind: JobKind, raw: unknown) {
  return parseInput(payloadSchemas[kind], raw ?? {}, `${kind} job`);
}

export async function enqueue(
  deps: EnqueueDeps,
  kind: JobKind,
  raw: unknown,
  trigger: Trigger,
  options: EnqueueOptions = {},
): Promise<EnqueuedJob> {
  const payload = parsePayload(kind, raw);
  const spec = placeJob(deps.fleet, kind, payload as { model?: string });
  const entry = deps.queues.get(spec.name);
  if (!entry) throw new Error(`queue ${spec.name} is not open`);
  deps.queues.assertReachable();
  const data: JobData = { kind, payload, trigger } as JobData;
  const id = newJobId(spec.name, options.idSuffix);
  const delay = options.delayMs && options.delayMs > 0 ? options.delayMs : undefined;
  await entry.queue.add(kind, data, { jobId: id, ...(delay ? { delay } : {}) });
  return { id, kind, queue: spec.name, state: delay ? 'delayed' : 'waiting' };
}
