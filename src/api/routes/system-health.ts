// GET /api/system/health: Redis and Postgres (with latency and Redis's safety for queued jobs),
// every live worker with its GPUs, the operator's drains (of hosts without a live worker too),
// training in progress with progress and an ETA, and the next fire of each schedule. A drain is
// an operator's choice, not a fault: it is listed, never a warning. 200 when Redis and Postgres
// answer, 503 naming what is down. Every probe has a deadline, so the answer never hangs.
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { LoadedFleet } from '../../config/load-fleet.js';
import { probePostgres, probeRedis, withDeadline } from '../../health.js';
import { checkRedisSafety } from '../../redis-safety.js';
import type { ScheduleRepository } from '../../registry/schedules.js';
import { nextFires } from '../../scheduler/fire-times.js';
import { drainsView, readAllDrains } from '../../queues/drains.js';
import { percentDone } from '../../queues/progress.js';
import { gpuFree, listWorkers, type RunningJobStatus, type WorkerStatus } from '../../queues/worker-status.js';

export interface SystemHealthDeps {
  fleet: LoadedFleet;
  redis: Redis;
  pool: pg.Pool;
  prefix: string;
  schedules: ScheduleRepository;
}

const PROBE_MS = 1000;

/** Percent done and seconds left, from what the trainer reported and how long it has run. */
export function trainingProgress(job: RunningJobStatus, now = Date.now()) {
  const p = (job.progress ?? {}) as { percent?: number; epoch?: number; epochs?: number; metrics?: unknown; etaSeconds?: number };
  const percent = percentDone(p) ?? null;
  const elapsed = (now - Date.parse(job.startedAt)) / 1000;
  const eta = percent && percent > 0 ? Math.round((elapsed * (100 - percent)) / percent) : null;
  return {
    percent: percent === null ? null : Math.round(percent * 10) / 10,
    epoch: p.epoch ?? null,
    epochs: p.epochs ?? null,
    metrics: p.metrics ?? null,
    elapsedSeconds: Math.round(elapsed),
    etaSeconds: eta,
  };
}

export async function systemHealthRoutes(app: FastifyInstance, deps: SystemHealthDeps): Promise<void> {
  app.get('/api/system/health', { config: { access: 'read' } }, async (_request, reply) => {
    const [redis, postgres] = await Promise.all([probeRedis(deps.redis, PROBE_MS), probePostgres(deps.pool, PROBE_MS)]);
    const down = [!redis.ok && 'redis', !postgres.ok && 'postgres'].filter((d): d is string => Boolean(d));
    const [workers, safety, paused, drains] = await Promise.all([
      redis.ok ? withDeadline(listWorkers(deps.redis, deps.prefix), PROBE_MS, 'workers').catch(() => [] as WorkerStatus[]) : [],
      redis.ok ? withDeadline(checkRedisSafety(deps.redis), PROBE_MS, 'redis config').catch(() => undefined) : undefined,
      postgres.ok ? withDeadline(deps.schedules.allStates(), PROBE_MS, 'schedules').catch(() => undefined) : undefined,
      redis.ok ? withDeadline(readAllDrains(deps.redis, deps.prefix, Object.keys(deps.fleet.hosts)), PROBE_MS, 'drains').catch(() => undefined) : undefined,
    ]);
    const training = workers.flatMap((w) =>
      w.running.filter((r) => r.kind === 'training').map((r) => ({ jobId: r.id, model: r.model ?? null, host: w.host, gpus: r.gpus, startedAt: r.startedAt, ...trainingProgress(r) })),
    );
    const warnings = [...(safety?.warnings ?? [])];
    if (redis.ok && workers.length === 0) warnings.push('no worker is running: jobs will wait');
    for (const w of workers) for (const g of w.gpus) if (g.unhealthy) warnings.push(`GPU ${g.index} of ${w.host} is not leased, it failed its health check: ${g.unhealthy.reasons.join('; ')}`);
    return reply.status(down.length ? 503 : 200).send({
      status: down.length ? 'down' : warnings.length ? 'degraded' : 'ok',
      ...(down.length ? { down } : {}),
      warnings,
      redis: { ...redis, ...(safety ? { safety: { evictionPolicy: safety.evictionPolicy, appendonly: safety.appendonly, rdb: safety.rdb } } : {}) },
      postgres,
      workers: workers.map((w) => ({
        host: w.host,
        instance: w.instance,
        version: w.version,
        lastHeartbeat: w.at,
        ...(w.drained ? { drained: w.drained } : {}),
        gpus: w.gpus.map((g) => ({
          index: g.index,
          name: g.name,
          // Busy: something is on it or wrong with it; a drain is the operator's choice, shown apart.
          busy: g.jobId !== null || g.blockedBy !== undefined || g.unhealthy !== undefined,
          free: gpuFree(g),
          jobId: g.jobId,
          ...(g.blockedBy ? { blockedBy: g.blockedBy } : {}),
          ...(g.drained ? { drained: g.drained } : {}),
          ...(g.unhealthy ? { unhealthy: g.unhealthy } : {}),
        })),
        cpuSlots: w.cpuSlots,
        running: w.running.map((r) => r.id),
      })),
      drains: [...(drains ?? [])].filter(([, d]) => d.host || d.gpus.size > 0).map(([host, d]) => drainsView(host, d)),
      training,
      schedules: Object.entries(deps.fleet.schedules).map(([name, s]) => {
        const isPaused = paused?.get(name)?.paused ?? false;
        return { name, paused: isPaused, nextFire: isPaused ? null : (nextFires(s, 1, new Date())[0]?.toISOString() ?? null) };
      }),
    });
  });
}
