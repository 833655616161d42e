// The worker of one host: takes a job off a queue only when the host can start it now, runs it
// as a child process on exactly the GPUs (or CPU slot) it leased, and reports back.
//
// Which queue it takes from, and when it holds GPUs for a starved multi-GPU job, is decided by the
// dispatch policy (./policy/, pure functions) on a snapshot this worker reads (./dispatch-snapshot.ts);
// between passes it blocks on the markers of the queues it could serve (./marker-wait.ts), so no
// job is held while waiting for capacity and nothing polls Redis. Each job it starts is a
// RunningJob (./running-job.ts); ./heartbeat.ts publishes what the host runs. Where nvidia-smi
// exists, ./gpu-guard.ts keeps GPUs on which a process that is not one of its jobs computes out
// of the capacity it leases, ./gpu-health-check.ts those that fail their health check, and
// ./drain-watcher.ts what an operator drained.
import { randomBytes } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { gpuHealthOf } from '../config/gpu-health-schema.js';
import type { LoadedFleet } from '../config/load-fleet.js';
import type { FencedLock } from '../locks/fenced-lock.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { SERVING_PRIORITY } from '../queues/kinds.js';
import type { JobData } from '../queues/payloads.js';
import type { QueueSpec } from '../queues/placement.js';
import type { QueueSet } from '../queues/queue-set.js';
import { drainedGpus, gpuDrainOf, handsBack, type HostDrains } from '../queues/drains.js';
import type { GpuHolds, WorkerStatus } from '../queues/worker-status.js';
import type { Registry } from '../registry/index.js';
import { Capacity, type Lease } from './capacity.js';
import type { Consumers } from './consumers.js';
import { readSnapshot, type RunningFacts } from './dispatch-snapshot.js';
import { DrainWatcher } from './drain-watcher.js';
import { DurationBook } from './durations.js';
import type { Gpu } from './gpu-discovery.js';
import { GpuGuard } from './gpu-guard.js';
import { GpuHealthCheck } from './gpu-health-check.js';
import { Heartbeat } from './heartbeat.js';
import { MarkerWait } from './marker-wait.js';
import { forgetChild, recordChild, sweepOrphans } from './orphans.js';
import { WarmPool } from './warm-pool.js';
import {
  afterStart,
  byPriority,
  claimDue,
  decide,
  pooled,
  serveableQueues,
  TAKEOVER_MARGIN_MS,
  type DispatchDecision,
  type DispatchPolicy,
  type DispatchSnapshot,
  type Hold,
  type HostView,
  type QueueState,
} from './policy/index.js';
import { claimReservation, releaseReservation } from '../queues/reservations.js';
import { preemptedKey, prioritizedKey, waitKey } from '../queues/redis-names.js';
import { PRIORITY_CLASSES } from '../config/priority-class.js';
import { RunningJob } from './running-job.js';

export interface HostWorkerOptions {
  lockDurationMs: number;
  /** SIGTERM to SIGKILL, when a job's process group must end. */
  killGraceMs: number;
  /** How long running jobs may go on after close() before they are ended and handed back. */
  shutdownGraceMs: number;
  heartbeatMs: number;
  starvationGuardMs: number;
  /** How hosts keep big jobs from starving: see policy/snapshot.ts. */
  dispatchPolicy: DispatchPolicy;
  /** How long a backfilled job may overrun the reservation's expected start before it is handed back. */
  backfillOverrunMs: number;
  /** How long a training of a higher priority class waits before it may preempt lower ones (policy/preemption.ts). */
  preemptAfterMs: number;
  /** How long a preempted job is safe from being preempted again. */
  preemptIntervalMs: number;
  /** Longest single BZPOPMIN; also bounds how late a delayed job seen by another host starts here. */
  maxBlockMs: number;
  /** How often nvidia-smi is asked which processes compute on the GPUs (where it exists). */
  gpuCheckMs: number;
}

export const DEFAULT_HOST_WORKER_OPTIONS: HostWorkerOptions = {
  lockDurationMs: 30_000,
  killGraceMs: 10_000,
  shutdownGraceMs: 30_000,
  heartbeatMs: 5_000,
  // With one host of a pool holding (not all of them) and backfill filling its idle GPUs, holding
  // early costs little; a long guard is what let big jobs wait many times their fair share.
  starvationGuardMs: 2_000,
  dispatchPolicy: 'backfill',
  backfillOverrunMs: 30_000,
  preemptAfterMs: 120_000,
  preemptIntervalMs: 30 * 60_000,
  maxBlockMs: 5_000,
  gpuCheckMs: 5_000,
};

export interface HostWorkerDeps {
  hostId: string;
  gpus: Gpu[];
  gpuSource: 'nvidia-smi' | 'config';
  /** The nvidia-smi that reported the GPUs; absent when they come from the config. */
  nvidiaSmi?: string;
  cpuSlots: number;
  fleet: LoadedFleet;
  /** The queues this host serves: those of its pools. */
  served: QueueSpec[];
  consumers: Consumers;
  registry: Registry;
  locks: FencedLock;
  metrics: Metrics;
  /** For jobs that enqueue follow-up jobs (a checkpoint's validation). */
  queues: QueueSet;
  /** Commands; shared by the process. */
  redis: Redis;
  /** Dedicated to this worker's BZPOPMIN. */
  blocking: Redis;
  prefix: string;
  logger: Logger;
  /** The environment children start from (PATH and the like); job variables are added to it. */
  baseEnv: Record<string, string>;
  dataDir: string;
  version: string;
  options: HostWorkerOptions;
  /** Sees every dispatch decision with the snapshot it was made on: traces for the simulator's replay test. */
  onDecision?: (snapshot: DispatchSnapshot, decision: DispatchDecision) => void;
}

export class HostWorker {
  readonly instance = randomBytes(4).toString('hex');
  private readonly capacity: Capacity;
  /** The served queues as the policy sees them, in config order; their specs by name. */
  private readonly queues: QueueState[];
  private readonly specs: Map<string, QueueSpec>;
  private readonly running = new Map<string, RunningJob>();
  private readonly finishing = new Set<Promise<void>>();
  private readonly markers: MarkerWait;
  private readonly log: Logger;
  private readonly startedAt = new Date().toISOString();
  private stopping = false;
  private loopDone: Promise<void> | undefined;
  private readonly heartbeat: Heartbeat;
  private readonly gpuGuard: GpuGuard | undefined;
  private readonly gpuHealth: GpuHealthCheck | undefined;
  private readonly drains: DrainWatcher;
  private reservedFor: string | undefined;
  /** The hold as last decided (and, for the pool policies, claimed in Redis). */
  private hold: Hold | undefined;
  private readonly durations: DurationBook;
  private readonly warm: WarmPool;
  /** The queues the last decision would start from, and when to decide again: what the wait is for. */
  private waitOn: { queues: string[]; until?: number } = { queues: [] };
  private tokenSeq = 0;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: HostWorkerDeps) {
    this.capacity = new Capacity(deps.gpus, deps.cpuSlots);
    this.queues = deps.served.map((q) => ({ name: q.name, priority: SERVING_PRIORITY[q.kind], gpus: q.gpus }));
    this.specs = new Map(deps.served.map((q) => [q.name, q]));
    this.durations = new DurationBook(deps.redis, deps.prefix);
    this.log = deps.logger.child({ component: 'worker', host: deps.hostId });
    const { redis, blocking, prefix, hostId: host, options } = deps;
    this.markers = new MarkerWait({ redis, blocking, prefix, host, instance: this.instance, maxBlockMs: options.maxBlockMs, log: this.log });
    this.warm = new WarmPool({
      graceMs: deps.options.killGraceMs,
      log: this.log,
      // Recorded like a cold child, so a worker killed with -9 has its warm processes swept at the next start.
      onStart: (proc) => {
        if (proc.pid !== undefined) void recordChild(redis, prefix, host, { jobId: 'warm-process', runId: proc.runId, pgid: proc.pid }).catch(() => {});
      },
      onEnd: (proc) => void forgetChild(redis, prefix, host, proc.runId).catch(() => {}),
    });
    this.heartbeat = new Heartbeat({
      redis,
      prefix,
      host,
      instance: this.instance,
      periodMs: options.heartbeatMs,
      status: () => this.status(),
      // The reservation's lease outlives a beat or two, so only a dead holder loses it.
      onBeat: () => this.renewHold(),
      log: this.log,
    });
    this.drains = new DrainWatcher({ redis, prefix, host, periodMs: options.heartbeatMs, onChange: (d) => this.applyDrains(d), log: this.log });
    if (deps.nvidiaSmi && deps.gpus.length > 0) {
      this.gpuGuard = new GpuGuard({
        nvidiaSmi: deps.nvidiaSmi,
        gpus: deps.gpus,
        periodMs: options.gpuCheckMs,
        liveRuns: () => new Set([...[...this.running.values()].flatMap((r) => [...r.runs]), ...this.warm.idleRunIds()]),
        onChange: (blocks) => this.holdGpus('blockedBy', blocks),
        log: this.log,
      });
      this.gpuHealth = new GpuHealthCheck({
        nvidiaSmi: deps.nvidiaSmi,
        gpus: deps.gpus,
        periodMs: options.gpuCheckMs,
        config: gpuHealthOf(deps.fleet, host),
        host,
        metrics: deps.metrics,
        onChange: (unhealthy) => this.holdGpus('unhealthy', unhealthy),
        log: this.log,
      });
    }
  }

  get hostId(): string {
    return this.deps.hostId;
  }

  async start(): Promise<void> {
    await sweepOrphans(this.deps.redis, this.deps.prefix, this.deps.hostId, this.log);
    await this.gpuGuard?.start();
    await this.gpuHealth?.start();
    await this.drains.start();
    // Connect the consumers now, not inside a getNextJob that should follow its snapshot at once.
    await Promise.all(serveableQueues(this.view()).map((q) => this.deps.consumers.get(q.name).waitUntilReady()));
    await this.heartbeat.start();
    this.loopDone = this.loop();
    this.log.info(
      { gpus: this.deps.gpus.map((g) => g.index), cpuSlots: this.deps.cpuSlots, queues: byPriority(this.queues).map((q) => q.name) },
      'host worker started',
    );
  }

  /** Ends a job running here, if it is; true when it was. */
  cancel(jobId: string): boolean {
    const entry = this.running.get(jobId);
    if (!entry) return false;
    entry.stop('cancel');
    return true;
  }

  /** The drains of `host` changed (a message on the drain channel): read them again if they are ours. */
  drainsChanged(host: string): void {
    if (host === this.deps.hostId) void this.drains.refresh();
  }

  status(): WorkerStatus {
    const snap = this.capacity.snapshot();
    const hostDrain = this.drains.drains.host;
    return {
      host: this.deps.hostId,
      instance: this.instance,
      pid: process.pid,
      version: this.deps.version,
      startedAt: this.startedAt,
      at: new Date().toISOString(),
      gpuSource: this.deps.gpuSource,
      gpus: snap.gpus.map(({ utilizationPercent: _u, ...gpu }) => gpu),
      cpuSlots: snap.cpuSlots,
      queues: byPriority(this.queues).map((q) => q.name),
      running: [...this.running.values()].map((r) => r.status()),
      ...(this.reservedFor ? { reservedFor: this.reservedFor } : {}),
      ...(hostDrain ? { drained: gpuDrainOf(hostDrain) } : {}),
      ...(this.hold
        ? {
            reservation: {
              queue: this.hold.queue,
              ...(this.hold.jobId ? { jobId: this.hold.jobId } : {}),
              expectedStartAt: Number.isFinite(this.hold.expectedStartAt) ? new Date(this.hold.expectedStartAt).toISOString() : null,
            },
          }
        : {}),
    };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // --- taking jobs -------------------------------------------------------------------------

  private async loop(): Promise<void> {
    let popped: string | undefined;
    while (!this.stopping) {
      try {
        const tried = await this.fill();
        // A marker we consumed for a queue we did not get to try belongs to another host.
        if (popped && !tried.has(popped)) await this.markers.giveBack(popped);
        if (this.stopping) break;
        popped = await this.markers.next(this.waitOn.queues, this.waitOn.until);
      } catch (err) {
        if (this.stopping) break;
        this.log.error({ err }, 'dispatch loop error; retrying in a second');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /** Takes and starts jobs while there is capacity and work; returns the queues it tried. */
  private async fill(): Promise<Set<string>> {
    const tried = new Set<string>();
    const empty = new Set<string>();
    let outcome: 'started' | 'stale' | 'idle' = 'idle';
    do {
      if (this.stopping) break;
      // A GPU is leased on an answer of nvidia-smi at most a period old.
      if (this.capacity.freeGpus() > 0) await Promise.all([this.gpuGuard?.fresh(), this.gpuHealth?.fresh()]);
      const { redis, prefix, hostId: host, options } = this.deps;
      const snapshot = await readSnapshot(
        {
          redis,
          prefix,
          host,
          policy: options.dispatchPolicy,
          starvationGuardMs: options.starvationGuardMs,
          backfillOverrunMs: options.backfillOverrunMs,
          preemptAfterMs: options.preemptAfterMs,
          preemptIntervalMs: options.preemptIntervalMs,
          durations: this.durations,
          classOf: (queue) => {
            const spec = this.specs.get(queue);
            return spec?.kind === 'training' ? this.deps.fleet.models[spec.model!]?.priorityClass : undefined;
          },
        },
        this.view(),
        this.runningFacts(),
      );
      const decision = decide(snapshot);
      this.deps.onDecision?.(snapshot, decision);
      for (const id of decision.stop) {
        this.log.warn({ jobId: id, reservedFor: decision.reservedFor }, 'backfilled job overran the reservation it had to end before; handing it back');
        this.running.get(id)?.stop('overrun');
      }
      await this.preempt(decision, snapshot);
      if (!(await this.reserve(decision))) {
        outcome = 'stale'; // another host holds it now: decide again on what is stored
        continue;
      }
      this.waitOn = { queues: decision.order.map((q) => q.name), ...(decision.wakeAt !== undefined ? { until: decision.wakeAt } : {}) };
      outcome = await this.startOne(decision, tried, empty);
    } while (outcome !== 'idle');
    return tried;
  }

  /**
   * Stops the decision's victims for the held job, after marking each preempted (so no host
   * preempts it again within the interval, and its waitingFor says why it waits) and saying so in
   * its job log, the worker log and the metrics. The victims hand their job back after their stop
   * grace and resume later from their newest checkpoint.
   */
  private async preempt(decision: DispatchDecision, snapshot: DispatchSnapshot): Promise<void> {
    const { redis, prefix, hostId: host, metrics, options } = this.deps;
    const held = snapshot.queues.find((q) => q.name === decision.reservedFor);
    for (const id of decision.preempt) {
      const victim = this.running.get(id);
      if (!victim || victim.facts().stopping) continue;
      const forClass = held?.headClass !== undefined ? PRIORITY_CLASSES[held.headClass]! : 'unknown';
      const record = { at: new Date().toISOString(), host, forJob: decision.hold?.jobId ?? null, forClass, victimClass: victim.priorityClass ?? 'unknown' };
      victim.preemptedAt = Date.now();
      await redis.set(preemptedKey(prefix, id), JSON.stringify(record), 'PX', options.preemptIntervalMs);
      await victim.job
        .log(`preempted on ${host} at ${record.at} for job ${record.forJob} (class ${forClass}); it resumes from its newest checkpoint`)
        .catch(() => {});
      metrics.preemptions.inc({ pool: victim.spec.pool, victim_class: record.victimClass, for_class: forClass });
      this.log.warn({ jobId: id, ...record }, 'preempting a job of a lower priority class');
      victim.stop('preempt');
    }
  }

  /**
   * The GPU jobs running here, as the dispatch snapshot needs them. A job whose GPUs are back is
   * not: the pass its release wakes runs while it is still being settled, and counting it would
   * expect its (free) GPUs a second time, at its end, which is now.
   */
  private runningFacts(): RunningFacts[] {
    return [...this.running.values()].filter((r) => r.spec.gpus > 0 && !r.leaseReleased).map((r) => r.facts());
  }

  /**
   * Asks the queues of `order` in turn for a job and starts the first it gets ('started'). A GPU
   * queue is asked only on heads read after the last queue that had nothing: a decision on older
   * heads misses a big job that came meanwhile and gives its GPUs to a smaller job enqueued after
   * it ('stale': read again). Queues in `empty` had nothing since the last start; they are not
   * asked again in this pass (a job that comes to one leaves a marker for the next wait).
   */
  private async startOne({ order, backfill }: DispatchDecision, tried: Set<string>, empty: Set<string>): Promise<'started' | 'stale' | 'idle'> {
    let missed = false;
    for (const { name, gpus } of order) {
      if (empty.has(name)) continue;
      if (gpus > 0 && missed) return 'stale';
      tried.add(name);
      const token = `${this.instance}:${++this.tokenSeq}`;
      const job = (await this.deps.consumers.get(name).getNextJob(token, { block: false })) as Job<JobData> | undefined;
      if (!job) {
        empty.add(name);
        missed = true;
        continue;
      }
      const spec = this.specs.get(name)!;
      // Only this loop leases, but a hold (a drain, a foreign process) may have come since the decision.
      const lease = this.capacity.lease(job.id!, spec);
      if (!lease) {
        await job.moveToWait(token);
        return 'stale';
      }
      this.launch(spec, job, token, lease, backfill.get(name));
      empty.clear(); // after a start, every queue is asked again, from the highest priority
      return 'started';
    }
    return 'idle';
  }

  /** Capacity, standing reservation and served queues, without heads: enough to know what to wait on. */
  private view(): HostView {
    return { queues: this.queues, capacity: this.capacity.state(), reservedFor: this.reservedFor };
  }

  /**
   * Takes the decision's hold: in Redis for the pool policies (claim or renew; give up the one
   * it replaces). False when another host won the claim, so the decision no longer stands.
   */
  private async reserve({ hold }: DispatchDecision): Promise<boolean> {
    const isPooled = pooled(this.deps.options.dispatchPolicy);
    const previous = this.hold;
    if (previous && previous.queue !== hold?.queue && isPooled) await releaseReservation(this.deps.redis, this.deps.prefix, previous.queue, this.deps.hostId);
    if (hold && isPooled) {
      if (claimDue(previous, hold) && !(await this.claim(hold))) {
        this.hold = undefined;
        this.reservedFor = undefined;
        return false;
      }
    }
    if (hold && hold.queue !== this.reservedFor) {
      const expectedStart = Number.isFinite(hold.expectedStartAt) ? new Date(hold.expectedStartAt).toISOString() : 'unknown';
      this.log.info({ queue: hold.queue, jobId: hold.jobId, expectedStart }, 'holding GPUs for a job that has waited too long');
    }
    if (hold?.queue !== previous?.queue || hold?.jobId !== previous?.jobId) this.heartbeat.soon();
    this.hold = hold;
    this.reservedFor = hold?.queue;
    return true;
  }

  private async claim(hold: Hold): Promise<boolean> {
    const { redis, prefix, hostId: host, options } = this.deps;
    const bid = { queue: hold.queue, host, instance: this.instance, ...(hold.jobId ? { jobId: hold.jobId } : {}), expectedStartAt: Number.isFinite(hold.expectedStartAt) ? hold.expectedStartAt : null };
    const standing = await claimReservation(redis, prefix, bid, TAKEOVER_MARGIN_MS, options.heartbeatMs * 3);
    if (standing.host === host) return true;
    this.log.info({ queue: hold.queue, holder: standing.host }, 'another host holds the reservation with an earlier expected start');
    return false;
  }

  /** Renews the stored reservation's lease (each heartbeat), so it lapses only when this worker stops. */
  private async renewHold(): Promise<void> {
    const hold = this.hold;
    const isPooled = pooled(this.deps.options.dispatchPolicy);
    if (!hold || !isPooled || this.stopping) return;
    if (!(await this.claim(hold))) {
      // Taken over (a better bid) while this host was idle: stop holding, decide again.
      this.hold = undefined;
      this.reservedFor = undefined;
      this.markers.wake();
    }
  }

  /** One source of GPU holds changed: what the host can start changed with it. */
  private holdGpus<K extends keyof GpuHolds>(source: K, holds: ReadonlyMap<number, NonNullable<GpuHolds[K]>>): void {
    this.capacity.hold(source, holds);
    this.heartbeat.soon();
    if (!this.stopping) this.markers.wake();
  }

  // --- running jobs ------------------------------------------------------------------------

  private launch(spec: QueueSpec, job: Job<JobData>, token: string, lease: Lease, backfillDeadlineAt: number | undefined): void {
    const entry = new RunningJob(
      { ...this.deps, durations: this.durations, warm: this.warm, mayChain: (j) => this.mayChain(j), adopt: (j, next, t) => this.adopt(j, next, t) }, job, spec, lease, token, this.log, (l) => this.released(l), backfillDeadlineAt);
    this.running.set(job.id!, entry);
    if (entry.priorityClass) {
      // Until this is read the job counts as just preempted: it is not preempted on a guess.
      this.deps.redis
        .get(preemptedKey(this.deps.prefix, job.id!))
        .then((raw) => (entry.preemptedAt = raw ? Date.parse((JSON.parse(raw) as { at: string }).at) : undefined))
        .catch((err: unknown) => this.log.warn({ err, jobId: job.id }, 'could not read whether the job was preempted before'));
    }
    this.reservedFor = afterStart(this.reservedFor, spec.name);
    if (this.hold && this.reservedFor === undefined) {
      // The job it held for has its GPUs: the reservation is done.
      const { queue } = this.hold;
      this.hold = undefined;
      if (pooled(this.deps.options.dispatchPolicy)) {
        releaseReservation(this.deps.redis, this.deps.prefix, queue, this.deps.hostId).catch((err: unknown) => this.log.warn({ err, queue }, 'could not give up a reservation'));
      }
    }
    this.heartbeat.soon();
    const done = entry
      .run()
      .catch((err: unknown) => this.log.error({ err, jobId: job.id }, 'job bookkeeping failed'))
      .finally(() => {
        entry.release();
        this.running.delete(job.id!);
        this.finishing.delete(done);
        this.heartbeat.soon();
      });
    this.finishing.add(done);
  }

  /**
   * Whether a settling CPU job's slot may go straight to the next job of its queue, taken with
   * its completion in one round trip (BullMQ's fetch-next), instead of a wake-up and a dispatch
   * pass. Only when this pass would pick that queue anyway: not stopping, CPU slots not drained,
   * and no CPU queue of a higher serving priority with a job waiting (one more read, against the
   * three the pass costs).
   */
  private async mayChain(entry: RunningJob): Promise<boolean> {
    if (this.stopping || !this.capacity.cpuOpen()) return false;
    const { priority } = this.queues.find((q) => q.name === entry.spec.name)!;
    const above = this.queues.filter((q) => q.gpus === 0 && q.priority > priority);
    if (above.length === 0) return true;
    const { redis, prefix } = this.deps;
    const pipeline = redis.pipeline();
    for (const q of above) pipeline.llen(waitKey(prefix, q.name)).zcard(prioritizedKey(prefix, q.name));
    const counts = (await pipeline.exec()) ?? [];
    return counts.every(([err, n]) => !err && n === 0);
  }

  /** Runs the job BullMQ handed over with a CPU job's end, in that job's slot. */
  private adopt(prev: RunningJob, next: unknown[], token: string): void {
    const consumer = this.deps.consumers.get(prev.spec.name) as unknown as {
      nextJobFromJobData(data: unknown, id: unknown, token: string): Promise<Job<JobData> | undefined>;
    };
    const lease: Lease = { jobId: String(next[1]), gpus: [], cpu: true };
    const adopted = consumer
      .nextJobFromJobData(next[0], next[1], token)
      .then(async (job) => {
        if (!job) return this.released(lease);
        if (this.stopping) {
          await job.moveToWait(token);
          return this.released(lease);
        }
        this.launch(prev.spec, job, token, lease, undefined);
      })
      .catch((err: unknown) => {
        // Its lock lapses and the stall check puts it back; the slot is free again now.
        this.log.error({ err, jobId: lease.jobId }, 'could not start the job handed over with the previous one');
        this.released(lease);
      })
      .finally(() => this.finishing.delete(adopted));
    this.finishing.add(adopted);
  }

  /** A running job gave its lease back: the capacity is free for the next job. */
  private released(lease: Lease): void {
    this.capacity.release(lease);
    this.heartbeat.soon();
    if (!this.stopping) this.markers.wake();
  }

  /** No new job on what the drains cover; with `now`, the running jobs they cover go back to their queues. */
  private applyDrains(drains: HostDrains): void {
    const { hostId: host, gpus, metrics } = this.deps;
    const drained = drainedGpus(drains, gpus.map((g) => g.index));
    this.capacity.hold('drained', drained);
    this.capacity.drainCpuSlots(drains.host !== undefined);
    for (const g of gpus) metrics.gpuDrained.set({ host, gpu: String(g.index) }, drained.has(g.index) ? 1 : 0);
    metrics.hostDrained.set({ host }, drains.host ? 1 : 0);
    for (const entry of this.running.values()) if (handsBack(drains, entry.lease.gpus.map((g) => g.index))) entry.stop('drain');
    this.heartbeat.soon();
    if (!this.stopping) this.markers.wake();
  }

  // --- shutdown ----------------------------------------------------------------------------

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.markers.wake();
    // With Redis away the wake cannot land; drop the blocking connection instead.
    const stuck = setTimeout(() => this.deps.blocking.disconnect(), 2000);
    await this.loopDone;
    clearTimeout(stuck);
    if (this.running.size > 0) {
      this.log.info({ running: this.running.size, graceMs: this.deps.options.shutdownGraceMs }, 'waiting for running jobs');
      const timer = new Promise((r) => setTimeout(r, this.deps.options.shutdownGraceMs).unref());
      await Promise.race([Promise.all(this.finishing), timer]);
      for (const entry of this.running.values()) entry.stop('shutdown');
      await Promise.all(this.finishing);
    }
    await this.warm.close();
    await this.gpuGuard?.close();
    await this.gpuHealth?.close();
    await this.drains.close();
    if (this.hold) await releaseReservation(this.deps.redis, this.deps.prefix, this.hold.queue, this.deps.hostId).catch(() => {});
    await this.heartbeat.close();
    await this.markers.close();
  }
}
