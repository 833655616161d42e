// Prometheus metrics. One registry per process, handed to the parts that record into it; the
// API serves it at /metrics, and worker and scheduler processes on CAELUM_METRICS_PORT. Labels
// stay bounded: queue, kind, model, host, GPU index, schedule, outcome, health reason — never a job id.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const SECONDS = [0.05, 0.25, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200];

export function createMetrics(opts: { defaults?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaults ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    jobDuration: new Histogram({
      name: 'caelum_job_duration_seconds',
      help: 'Time a job ran on a worker, by kind, model and outcome',
      labelNames: ['kind', 'model', 'outcome'] as const,
      buckets: SECONDS,
      registers,
    }),
    jobFailures: new Counter({
      name: 'caelum_job_failures_total',
      help: 'Failed job attempts, by kind and model',
      labelNames: ['kind', 'model'] as const,
      registers,
    }),
    jobFailedForGood: new Counter({
      name: 'caelum_job_failed_for_good_total',
      help: 'Jobs that failed their last attempt (or could never succeed), by kind and model; cancelled jobs are not counted',
      labelNames: ['kind', 'model'] as const,
      registers,
    }),
    jobRetries: new Counter({
      name: 'caelum_job_retries_total',
      help: 'Failed attempts that BullMQ will retry, by kind and model',
      labelNames: ['kind', 'model'] as const,
      registers,
    }),
    jobWait: new Histogram({
      name: 'caelum_job_wait_seconds',
      help: 'Time from enqueue (or the end of a delay) to the start of the job, by kind',
      labelNames: ['kind'] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600],
      registers,
    }),
    preemptions: new Counter({
      name: 'caelum_preemptions_total',
      help: 'Running trainings preempted (handed back after their stop grace) for a waiting job of a higher priority class',
      labelNames: ['pool', 'victim_class', 'for_class'] as const,
      registers,
    }),
    gpuLeased: new Gauge({
      name: 'caelum_gpu_leased',
      help: '1 while a GPU of a host is leased to a job, else 0',
      labelNames: ['host', 'gpu'] as const,
      registers,
    }),
    gpuUnhealthy: new Gauge({
      name: 'caelum_gpu_unhealthy',
      help: '1 while a GPU of a host fails a health check (ecc, retired-pages, row-remapping, temperature, xid, lost), else 0',
      labelNames: ['host', 'gpu', 'reason'] as const,
      registers,
    }),
    gpuDrained: new Gauge({
      name: 'caelum_gpu_drained',
      help: '1 while an operator has drained a GPU of a host (or the whole host), else 0',
      labelNames: ['host', 'gpu'] as const,
      registers,
    }),
    hostDrained: new Gauge({
      name: 'caelum_host_drained',
      help: '1 while an operator has drained a whole host, else 0',
      labelNames: ['host'] as const,
      registers,
    }),
    scheduleFires: new Counter({
      name: 'caelum_schedule_fires_total',
      help: 'Schedule fires claimed by this process, by outcome (enqueued, skipped, failed, missed)',
      labelNames: ['schedule', 'outcome'] as const,
      registers,
    }),
    notifications: new Counter({
      name: 'caelum_notifications_total',
      help: 'Webhook deliveries by target and outcome (delivered, retried: an attempt failed and will be retried, failed: given up)',
      labelNames: ['target', 'outcome'] as const,
      registers,
    }),
    lockGrants: new Counter({ name: 'caelum_lock_grants_total', help: 'Locks granted', registers }),
    lockWaits: new Counter({ name: 'caelum_lock_waits_total', help: 'Lock requests that found the lock held', registers }),
    lockWaitSeconds: new Histogram({
      name: 'caelum_lock_wait_seconds',
      help: 'Time a bounded acquire waited for a lock',
      buckets: [0.001, 0.01, 0.1, 1, 10, 60, 300],
      registers,
    }),
    fenceRefusals: new Counter({
      name: 'caelum_lock_fence_refusals_total',
      help: 'Writes refused because a newer fencing token had written the key',
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** For parts built without one (tests): records into a registry nobody reads. */
export const detachedMetrics = (): Metrics => createMetrics({ defaults: false });
