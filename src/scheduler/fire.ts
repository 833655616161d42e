// One fire of a schedule: claim it (exactly one replica wins, by a unique key in Postgres; the
// claim is a lease), apply the overlap policy, enqueue through the shared enqueue function under
// job ids derived from (schedule, scheduled time), and record the outcome. Used by the
// scheduler's timers, its catch-up, its repair of claims whose lease ran out, and the API's
// trigger. A repair enqueues under the same ids, so a claimer that did enqueue before it died (or
// that was only slow) does not get a second job.
import os from 'node:os';
import type { ScheduleConfig } from '../config/fleet-schema.js';
import type { LoadedFleet } from '../config/load-fleet.js';
import { toError, UnavailableError } from '../errors.js';
import { isRedisAway } from '../redis.js';
import type { Logger } from '../logger.js';
import { enqueue } from '../queues/enqueue.js';
import { cancelJob } from '../queues/jobs.js';
import { newJobId, placeJob, queueOfJobId } from '../queues/placement.js';
import type { QueueSet } from '../queues/queue-set.js';
import type { Fire, FireSource, ScheduleRepository } from '../registry/schedules.js';
import type { MarketDataRepository } from '../registry/market-data.js';
import type { Metrics } from '../metrics.js';
import { previousFire } from './fire-times.js';

export interface FireDeps {
  fleet: LoadedFleet;
  queues: QueueSet;
  schedules: ScheduleRepository;
  logger: Logger;
  /** Lets retrains of models with `freshData` sync stale symbols first. */
  marketData?: MarketDataRepository;
  metrics?: Pick<Metrics, 'scheduleFires'>;
  /** Who claims and repairs fires, as the fire history names it; default `<hostname>:<pid>`. */
  replica?: string;
  /** How long a claim is leased to its claimer before a live replica may take it over. */
  claimLeaseMs?: number;
}

/** A claim not settled 5 s after it was made was left by a replica that died or hangs. */
export const DEFAULT_CLAIM_LEASE_MS = 5_000;

export const replicaOf = (deps: Pick<FireDeps, 'replica'>): string => deps.replica ?? `${os.hostname()}:${process.pid}`;

export interface FireRequest {
  scheduledFor: Date;
  source: FireSource;
  manual: boolean;
  actor: string;
  /** Ignore the overlap policy (a manual trigger with `force`). */
  force?: boolean;
}

export interface FireResult {
  /** False when another replica had already claimed this fire. */
  claimed: boolean;
  outcome: 'enqueued' | 'skipped' | 'failed' | 'not-claimed';
  jobIds: string[];
  reason?: string;
  fire?: Fire;
}

const UNFINISHED = new Set(['waiting', 'prioritized', 'delayed', 'active', 'waiting-children']);

async function unfinishedRuns(deps: FireDeps, name: string): Promise<{ id: string; state: string }[]> {
  const ids = await deps.schedules.recentJobIds(name);
  const runs = await Promise.all(
    ids.map(async (id) => {
      const queue = deps.queues.get(queueOfJobId(id) ?? '')?.queue;
      const job = queue ? await queue.getJob(id) : undefined;
      return { id, state: job ? await job.getState() : 'gone' };
    }),
  );
  return runs.filter((r) => UNFINISHED.has(r.state));
}

/** What the overlap policy says, and which earlier runs to cancel first. */
async function overlapDecision(
  deps: FireDeps,
  name: string,
  s: ScheduleConfig,
  force: boolean,
): Promise<{ run: boolean; reason?: string; cancel: string[] }> {
  if (force || s.overlap === 'allow') return { run: true, cancel: [] };
  const open = await unfinishedRuns(deps, name);
  if (open.length === 0) return { run: true, cancel: [] };
  const describe = open.map((r) => `${r.id} (${r.state})`).join(', ');
  switch (s.overlap) {
    case 'skip':
      return { run: false, reason: `skipped: a previous run is still waiting or active: ${describe}`, cancel: [] };
    case 'buffer-one': {
      const waiting = open.filter((r) => r.state !== 'active');
      return waiting.length > 0
        ? { run: false, reason: `skipped: one run is already buffered behind the active one: ${describe}`, cancel: [] }
        : { run: true, cancel: [] };
    }
    case 'cancel-previous':
      return { run: true, cancel: open.map((r) => r.id), reason: `cancelled the previous run(s): ${describe}` };
  }
}

const suffixSafe = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, '_');

interface PlannedJob {
  kind: 'training' | 'data-sync';
  payload: object;
  /** The job id suffix, derived from (schedule, scheduled time, manual, symbol). */
  suffix: string;
}

/** The jobs a fire enqueues, with their derived ids. */
function jobsOf(name: string, s: ScheduleConfig, fire: Fire): PlannedJob[] {
  const at = new Date(fire.scheduledFor);
  const interval = fire.interval ? { start: new Date(fire.interval.start), end: new Date(fire.interval.end) } : null;
  return payloadsOf(s, interval).map((p) => ({
    kind: p.kind,
    payload: p.payload,
    suffix: `sched-${name}-${at.getTime()}${fire.manual ? '-m' : ''}${p.key ? `-${p.key}` : ''}`,
  }));
}

/** Whether a job of this fire is in its queue already: its claimer began enqueueing. */
async function anyEnqueued(deps: FireDeps, jobs: PlannedJob[]): Promise<boolean> {
  for (const j of jobs) {
    const spec = placeJob(deps.fleet, j.kind, j.payload as { model?: string });
    if (await deps.queues.get(spec.name)?.queue.getJob(newJobId(spec.name, j.suffix))) return true;
  }
  return false;
}

function payloadsOf(s: ScheduleConfig, interval: { start: Date; end: Date } | null): { kind: 'training' | 'data-sync'; payload: object; key?: string }[] {
  const window = interval ? { from: interval.start.toISOString(), to: interval.end.toISOString() } : undefined;
  const e = s.enqueue;
  if (e.kind === 'training') {
    const payload = { model: e.model, params: e.params, ...(window ? { datasetWindow: window } : {}), ...(e.priorityClass ? { priorityClass: e.priorityClass } : {}) };
    return [{ kind: 'training', payload }];
  }
  return e.symbols.map((symbol) => ({
    kind: 'data-sync' as const,
    key: suffixSafe(symbol),
    payload: { symbol, timeframe: e.timeframe, source: e.source, ...(window ? { window } : {}) },
  }));
}

async function dataInterval(deps: FireDeps, name: string, s: ScheduleConfig, at: Date, manual: boolean) {
  let start = manual ? undefined : previousFire(s, at);
  if (!start) {
    const last = await deps.schedules.lastEnqueued(name);
    if (last) start = new Date(last.scheduledFor);
  }
  return start && start.getTime() < at.getTime() ? { start, end: at } : null;
}

/**
 * Decides and enqueues a fire that this process has claimed, or taken over (`repair`). A repair
 * of a fire whose claimer had begun enqueueing carries its decision out rather than deciding
 * again: the overlap policy would see the claimer's own run and skip the fire.
 */
export async function completeFire(
  deps: FireDeps,
  name: string,
  s: ScheduleConfig,
  fire: Fire,
  opts: { force?: boolean; repair?: boolean } = {},
): Promise<FireResult> {
  const log = deps.logger.child({ component: 'scheduler', schedule: name });
  const me = replicaOf(deps);
  const settle = async (outcome: 'enqueued' | 'skipped' | 'failed', jobIds: string[], reason: string | null) => {
    if (!(await deps.schedules.settle(fire.id, me, outcome, jobIds, reason))) {
      log.warn({ scheduledFor: fire.scheduledFor, outcome }, 'another replica took this fire over meanwhile; it records the outcome');
    }
  };
  try {
    const jobs = jobsOf(name, s, fire);
    const begun = opts.repair === true && (await anyEnqueued(deps, jobs));
    const decision = await overlapDecision(deps, name, s, (opts.force ?? false) || begun);
    if (!decision.run) {
      await settle('skipped', [], decision.reason ?? null);
      deps.metrics?.scheduleFires.inc({ schedule: name, outcome: 'skipped' });
      log.info({ scheduledFor: fire.scheduledFor, reason: decision.reason }, 'fire skipped');
      return { claimed: true, outcome: 'skipped', jobIds: [], ...(decision.reason ? { reason: decision.reason } : {}), fire };
    }
    for (const id of decision.cancel) {
      await cancelJob(deps.queues, id, `schedule ${name} (cancel-previous)`).catch(() => undefined);
    }
    const jobIds: string[] = [];
    for (const p of jobs) {
      const job = await enqueue(
        { fleet: deps.fleet, queues: deps.queues, ...(deps.marketData ? { marketData: deps.marketData } : {}) },
        p.kind,
        p.payload,
        {
          reason: 'schedule',
          by: fire.manual ? `${name} (triggered by ${fire.actor})` : name,
          at: new Date().toISOString(),
          scheduledFor: fire.scheduledFor,
        },
        { idSuffix: p.suffix },
      );
      jobIds.push(job.id);
    }
    const reason = decision.cancel.length ? (decision.reason ?? null) : null;
    await settle('enqueued', jobIds, reason);
    deps.metrics?.scheduleFires.inc({ schedule: name, outcome: 'enqueued' });
    log.info({ scheduledFor: fire.scheduledFor, jobIds, source: fire.source }, 'fire enqueued');
    return { claimed: true, outcome: 'enqueued', jobIds, ...(reason ? { reason } : {}), fire };
  } catch (err) {
    const e = toError(err);
    // Redis away (refused, or silent past the command bound): an add may still land late, so the
    // fire is not settled as failed. Its claim stays, its lease runs out, and a replica whose Redis
    // answers repairs it under the same job ids, which cannot enqueue twice. A manual trigger is
    // the exception: its caller was told it failed, so it must not run later.
    if (!fire.manual && (e instanceof UnavailableError || isRedisAway(e, deps.queues.connection))) {
      log.warn({ err: e, scheduledFor: fire.scheduledFor }, 'Redis is away: the fire stays claimed until a replica repairs it');
      return { claimed: true, outcome: 'failed', jobIds: [], reason: 'Redis is unreachable; the fire is left for repair', fire };
    }
    const reason = `failed to enqueue: ${e.message}`;
    log.error({ err, scheduledFor: fire.scheduledFor }, 'fire failed');
    await settle('failed', [], reason).catch(() => undefined);
    deps.metrics?.scheduleFires.inc({ schedule: name, outcome: 'failed' });
    return { claimed: true, outcome: 'failed', jobIds: [], reason, fire };
  }
}

export async function fireSchedule(deps: FireDeps, name: string, s: ScheduleConfig, req: FireRequest): Promise<FireResult> {
  const interval = await dataInterval(deps, name, s, req.scheduledFor, req.manual);
  const fire = await deps.schedules.claim({
    schedule: name,
    scheduledFor: req.scheduledFor,
    manual: req.manual,
    source: req.source,
    actor: req.actor,
    interval,
    claimedBy: replicaOf(deps),
    leaseMs: deps.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS,
  });
  if (!fire) return { claimed: false, outcome: 'not-claimed', jobIds: [] };
  return completeFire(deps, name, s, fire, { force: req.force ?? false });
}
