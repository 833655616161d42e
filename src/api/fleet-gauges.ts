// Fleet-wide gauges read at scrape time for the alert rules (deploy/prometheus/alerts.yml):
// whether Redis keeps its data and never evicts, GPUs free while GPU jobs that fit them wait, the
// age of each market-data key a model wants fresh, schedule fires due but not recorded, and when
// each scheduled model's feed last advanced. Timestamps rather than ages, as Prometheus prefers:
// a rule subtracts them from time(). A store that does not answer leaves its series out of that
// scrape rather than failing /metrics.
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';
import type { LoadedFleet } from '../config/load-fleet.js';
import { withDeadline } from '../health.js';
import type { Metrics } from '../metrics.js';
import type { QueueSet } from '../queues/queue-set.js';
import { gpuFree, listWorkers } from '../queues/worker-status.js';
import { checkRedisSafety } from '../redis-safety.js';
import type { Registry } from '../registry/index.js';
import { cronOf, nextFires } from '../scheduler/fire-times.js';

const READ_MS = 2000;
const seconds = (d: Date | string | number) => new Date(d).getTime() / 1000;

export interface FleetGaugeDeps {
  fleet: LoadedFleet;
  queues: QueueSet;
  redis: Redis;
  registry: Pick<Registry, 'checkpoints' | 'schedules' | 'marketData'>;
  metrics: Metrics;
}

/**
 * The longest a model's feed can go without advancing while its schedules run as planned: the
 * widest gap between consecutive scheduled trainings (over their next fires), plus the longest a
 * training and its validation may take. Models without a cron training schedule are absent.
 */
export function feedIntervals(fleet: LoadedFleet, from = new Date()): Map<string, number> {
  const out = new Map<string, number>();
  for (const [model, m] of Object.entries(fleet.models)) {
    const schedules = Object.values(fleet.schedules).filter((s) => s.cron && s.enqueue.kind === 'training' && s.enqueue.model === model);
    if (schedules.length === 0) continue;
    const runs = schedules.map((s) => nextFires(s, 60, from).map((d) => d.getTime()));
    // Up to where every schedule's list reaches, so one running out does not open a false gap.
    const horizon = Math.min(...runs.map((r) => r[r.length - 1] ?? Infinity));
    const times = runs.flat().filter((t) => t <= horizon).sort((a, b) => a - b);
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
    if (gap > 0) out.set(model, gap / 1000 + m.train.timeoutSeconds + m.validate.timeoutSeconds);
  }
  return out;
}

/** Runs a collect against a store; on failure or past the deadline the gauge stays empty for this scrape. */
const guarded = (gauge: Gauge, read: () => Promise<void>) => withDeadline(read(), READ_MS, 'a fleet gauge').catch(() => gauge.reset());

export function registerFleetGauges(deps: FleetGaugeDeps): void {
  const registers = [deps.metrics.registry];
  const { fleet, queues, registry } = deps;
  const redisReady = () => queues.connection.status === 'ready';
  // A scrape collects every gauge at once: the two Redis gauges share the read in flight.
  let safety: ReturnType<typeof checkRedisSafety> | undefined;
  const redisSafety = () => (safety ??= checkRedisSafety(deps.redis).finally(() => (safety = undefined)));

  new Gauge({
    name: 'caelum_redis_persistence',
    help: 'Whether Redis keeps its data on disk, by kind (aof, rdb): 1 on, 0 off; absent when CONFIG is not allowed',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      this.reset();
      if (!redisReady()) return;
      await guarded(this, async () => {
        const { appendonly, rdb } = await redisSafety();
        if (appendonly !== null) this.set({ kind: 'aof' }, appendonly ? 1 : 0);
        if (rdb !== null) this.set({ kind: 'rdb' }, rdb ? 1 : 0);
      });
    },
  });
  new Gauge({
    name: 'caelum_redis_maxmemory_policy',
    help: "Redis's maxmemory-policy, as a label of a series at 1 (anything but noeviction drops queued jobs under memory pressure)",
    labelNames: ['policy'] as const,
    registers,
    async collect() {
      this.reset();
      if (!redisReady()) return;
      await guarded(this, async () => {
        const { evictionPolicy } = await redisSafety();
        if (evictionPolicy) this.set({ policy: evictionPolicy }, 1);
      });
    },
  });

  const gpuQueues = queues.ofKind('training').filter((q) => q.spec.gpus > 0);
  const gpuPools = [...new Set(gpuQueues.map((q) => q.spec.pool))];
  new Gauge({
    name: 'caelum_gpu_jobs_waiting_with_free_gpus',
    help: "GPU trainings waiting in a pool's queues that would fit on the free GPUs of one live host of the pool right now",
    labelNames: ['pool'] as const,
    registers,
    async collect() {
      this.reset();
      if (!redisReady()) return;
      await guarded(this, async () => {
        const live = await listWorkers(queues.connection, queues.prefix);
        for (const pool of gpuPools) {
          const hosts = fleet.pools[pool] ?? [];
          const mostFree = Math.max(0, ...live.filter((w) => hosts.includes(w.host) && !w.drained).map((w) => w.gpus.filter(gpuFree).length));
          let waiting = 0;
          for (const { spec, queue } of gpuQueues.filter((q) => q.spec.pool === pool && q.spec.gpus <= mostFree)) {
            const c = await queue.getJobCounts('waiting', 'prioritized');
            waiting += (c.waiting ?? 0) + (c.prioritized ?? 0);
          }
          this.set({ pool }, waiting);
        }
      });
    },
  });

  new Gauge({
    name: 'caelum_data_sync_last_success_timestamp_seconds',
    help: 'When each symbol of a model with freshData was last synced at its timeframe (0: never)',
    labelNames: ['model', 'symbol', 'timeframe'] as const,
    registers,
    async collect() {
      this.reset();
      await guarded(this, async () => {
        for (const [model, m] of Object.entries(fleet.models)) {
          if (!m.freshData) continue;
          const { timeframe } = m.freshData;
          const synced = new Map((await registry.marketData.latest(m.symbols, timeframe)).map((r) => [r.symbol, seconds(r.syncedAt)]));
          for (const symbol of m.symbols) this.set({ model, symbol, timeframe }, synced.get(symbol) ?? 0);
        }
      });
    },
  });
  const maxAge = new Gauge({
    name: 'caelum_data_sync_max_age_seconds',
    help: "The oldest a model's market data may be (its freshData.maxAgeHours)",
    labelNames: ['model', 'timeframe'] as const,
    registers,
  });
  for (const [model, m] of Object.entries(fleet.models)) if (m.freshData) maxAge.set({ model, timeframe: m.freshData.timeframe }, m.freshData.maxAgeHours * 3600);

  const cronSchedules = Object.entries(fleet.schedules).filter(([, s]) => s.cron !== undefined);
  new Gauge({
    name: 'caelum_schedule_due_timestamp_seconds',
    help: 'The newest cron time of a running (not paused) schedule that is due, since the schedule was known or resumed',
    labelNames: ['schedule'] as const,
    registers,
    async collect() {
      this.reset();
      await guarded(this, async () => {
        const states = await registry.schedules.allStates();
        for (const [name, s] of cronSchedules) {
          const state = states.get(name);
          if (!state || state.paused) continue;
          const due = cronOf(s)?.previousRuns(1, new Date(Date.now() + 1))[0];
          const since = Math.max(Date.parse(state.knownSince), state.resumedAt ? Date.parse(state.resumedAt) : 0);
          if (due && due.getTime() > since) this.set({ schedule: name }, seconds(due));
        }
      });
    },
  });
  new Gauge({
    name: 'caelum_schedule_last_fire_timestamp_seconds',
    help: 'The scheduled time of the newest recorded fire of a schedule, whatever its outcome (0: none yet); triggers are not counted',
    labelNames: ['schedule'] as const,
    registers,
    async collect() {
      this.reset();
      await guarded(this, async () => {
        for (const [name] of cronSchedules) {
          const last = await registry.schedules.lastScheduled(name);
          this.set({ schedule: name }, last ? seconds(last.scheduledFor) : 0);
        }
      });
    },
  });

  const intervals = feedIntervals(fleet);
  const intervalGauge = new Gauge({
    name: 'caelum_feed_max_interval_seconds',
    help: "The longest a scheduled model's feed may go without a newly validated checkpoint: the widest gap between its scheduled trainings plus their training and validation timeouts",
    labelNames: ['model'] as const,
    registers,
  });
  for (const [model, s] of intervals) intervalGauge.set({ model }, s);
  new Gauge({
    name: 'caelum_feed_last_advance_timestamp_seconds',
    help: "When a scheduled model's feed last advanced (its newest validation), or, before its first, when its schedule was first known",
    labelNames: ['model'] as const,
    registers,
    async collect() {
      this.reset();
      await guarded(this, async () => {
        const [validated, states] = await Promise.all([registry.checkpoints.lastValidatedAt(), registry.schedules.allStates()]);
        for (const model of intervals.keys()) {
          const known = cronSchedules
            .filter(([, s]) => s.enqueue.kind === 'training' && s.enqueue.model === model)
            .map(([name]) => states.get(name))
            .filter((st) => st !== undefined && !st.paused)
            .map((st) => Date.parse(st!.knownSince));
          if (known.length === 0) continue; // paused, or no scheduler has run it yet
          const at = validated.get(model);
          this.set({ model }, seconds(at ?? Math.min(...known)));
        }
      });
    },
  });
}
