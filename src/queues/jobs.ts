// Reading and acting on jobs by id, across every queue: the API's job routes sit on this.
import type { Job, JobType } from 'bullmq';
import { ConflictError, NotFoundError } from '../errors.js';
import type { LoadedFleet } from '../config/load-fleet.js';
import { listWorkers } from './worker-status.js';
import { readReservations, type StoredReservation } from './reservations.js';
import { preemptedKey } from './redis-names.js';
import { waitReason, type Preemption } from './wait-reason.js';
import { cancelRequestOf, clearCancelRequest, requestCancel } from './cancel-requests.js';
import type { JobKind } from './kinds.js';
import type { JobData } from './payloads.js';
import { queueOfJobId } from './placement.js';
import type { QueueEntry, QueueSet } from './queue-set.js';

export const JOB_STATES = [
  'waiting',
  'prioritized',
  'delayed',
  'active',
  'completed',
  'failed',
  'waiting-children',
] as const satisfies readonly JobType[];
export type JobState = (typeof JOB_STATES)[number];

const LOG_TAIL = 50;

/** The newest `lines` lines of a job's log, oldest first. */
export async function logTail(entry: QueueEntry, id: string, lines: number): Promise<string[]> {
  const { logs } = await entry.queue.getJobLogs(id, 0, lines - 1, false);
  return logs.reverse();
}

export interface JobSummary {
  id: string;
  kind: JobKind;
  queue: string;
  state: string;
  model?: string;
  progress: unknown;
  attempts: { made: number; max: number };
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  failureReason?: string;
}

export interface JobView extends JobSummary {
  /** For a job not yet started: why (see wait-reason.ts). */
  waitingFor?: string;
  payload: unknown;
  trigger: unknown;
  result: unknown;
  cancelRequested?: { by: string; at: string };
  logs: string[];
}

async function findJob(queues: QueueSet, id: string): Promise<{ entry: QueueEntry; job: Job<JobData> }> {
  const name = queueOfJobId(id);
  const entry = name ? queues.get(name) : undefined;
  if (!entry) throw new NotFoundError(`no job "${id}"`);
  queues.assertReachable();
  const job = (await entry.queue.getJob(id)) as Job<JobData> | undefined;
  if (!job) throw new NotFoundError(`no job "${id}"`);
  return { entry, job };
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : undefined);

export function summarise(entry: QueueEntry, job: Job<JobData>, state: string): JobSummary {
  return {
    id: job.id!,
    kind: entry.spec.kind,
    queue: entry.spec.name,
    state,
    ...(entry.spec.model ? { model: entry.spec.model } : {}),
    progress: job.progress,
    attempts: { made: job.attemptsMade, max: job.opts.attempts ?? 1 },
    createdAt: iso(job.timestamp)!,
    ...(job.processedOn ? { startedAt: iso(job.processedOn) } : {}),
    ...(job.finishedOn ? { finishedAt: iso(job.finishedOn) } : {}),
    ...(job.failedReason ? { failureReason: job.failedReason } : {}),
  };
}

const NOT_STARTED = new Set(['waiting', 'prioritized', 'delayed']);

export async function getJobView(queues: QueueSet, id: string, fleet: LoadedFleet): Promise<JobView> {
  const found = await findJob(queues, id);
  const { entry } = found;
  let { job } = found;
  const [state, logs, cancel] = await Promise.all([
    job.getState(),
    logTail(entry, id, LOG_TAIL),
    cancelRequestOf(queues.connection, queues.prefix, id),
  ]);
  // The job's fields and its state are two reads: a job that ended between them is read again,
  // or the view would say `completed` with no result.
  if ((state === 'completed' || state === 'failed') && job.finishedOn === undefined) {
    job = ((await entry.queue.getJob(id)) as Job<JobData> | undefined) ?? job;
  }
  let waitingFor: string | undefined;
  if (state === 'delayed') waitingFor = `waiting to retry at ${new Date(job.timestamp + (job.delay ?? 0)).toISOString()}`;
  else if (NOT_STARTED.has(state)) {
    const [workers, reservations, preempted] = await Promise.all([
      listWorkers(queues.connection, queues.prefix),
      entry.spec.gpus > 0 ? readReservations(queues.connection, queues.prefix, [entry.spec.name]) : Promise.resolve(new Map<string, StoredReservation>()),
      entry.spec.kind === 'training' ? queues.connection.get(preemptedKey(queues.prefix, id)) : Promise.resolve(null),
    ]);
    waitingFor = waitReason(entry.spec, fleet, workers, {
      jobId: id,
      reservation: reservations.get(entry.spec.name),
      ...(preempted ? { preempted: JSON.parse(preempted) as Preemption } : {}),
    });
  }
  return {
    ...summarise(entry, job, state),
    ...(waitingFor ? { waitingFor } : {}),
    payload: job.data.payload,
    trigger: job.data.trigger,
    result: job.returnvalue ?? null,
    ...(cancel ? { cancelRequested: cancel } : {}),
    logs,
  };
}

export interface ListQuery {
  kind?: JobKind;
  state?: JobState;
  limit: number;
  offset: number;
}

/** Newest first across the queues of a kind (or all queues), with a total for paging. */
export async function listJobs(queues: QueueSet, q: ListQuery): Promise<{ jobs: JobSummary[]; total: number }> {
  queues.assertReachable();
  const entries = q.kind ? queues.ofKind(q.kind) : queues.all();
  const types: JobType[] = q.state ? [q.state] : [...JOB_STATES];
  const perQueue = await Promise.all(
    entries.map(async (entry) => {
      const [jobs, count] = await Promise.all([
        entry.queue.getJobs(types, 0, q.offset + q.limit - 1, false) as Promise<Job<JobData>[]>,
        entry.queue.getJobCountByTypes(...types),
      ]);
      return { entry, jobs: jobs.filter((j): j is Job<JobData> => Boolean(j)), count };
    }),
  );
  const merged = perQueue
    .flatMap(({ entry, jobs }) => jobs.map((job) => ({ entry, job })))
    .sort((a, b) => b.job.timestamp - a.job.timestamp)
    .slice(q.offset, q.offset + q.limit);
  const states = await Promise.all(merged.map(({ job }) => (q.state ? Promise.resolve(q.state) : job.getState())));
  return {
    jobs: merged.map(({ entry, job }, i) => summarise(entry, job, states[i]!)),
    total: perQueue.reduce((sum, p) => sum + p.count, 0),
  };
}

const REMOVABLE = new Set(['waiting', 'prioritized', 'delayed', 'waiting-children']);

/**
 * A job not yet started is removed. A running one is marked: its worker hears the request and
 * ends the process group. The mark is written first, so a job that moves from waiting to active
 * while we look is still cancelled before its child starts.
 */
export async function cancelJob(
  queues: QueueSet,
  id: string,
  by: string,
): Promise<{ id: string; state: 'cancelled' | 'cancelling' }> {
  const { job } = await findJob(queues, id);
  const state = await job.getState();
  if (state === 'completed' || state === 'failed') throw new ConflictError(`job "${id}" has already ${state}`);
  await requestCancel(queues.connection, queues.prefix, id, by);
  if (REMOVABLE.has(state)) {
    try {
      await job.remove();
      await clearCancelRequest(queues.connection, queues.prefix, id);
      return { id, state: 'cancelled' };
    } catch {
      // A worker locked it between our read and the removal: the mark stands and it will stop.
    }
  }
  return { id, state: 'cancelling' };
}

export async function retryJob(queues: QueueSet, id: string): Promise<{ id: string; state: 'waiting' }> {
  const { job } = await findJob(queues, id);
  const state = await job.getState();
  if (state !== 'failed') throw new ConflictError(`job "${id}" is ${state}; only a failed job can be retried`);
  await clearCancelRequest(queues.connection, queues.prefix, id);
  await job.retry('failed');
  return { id, state: 'waiting' };
}
