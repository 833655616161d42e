// /api/schedules: list with next fire times, one schedule's history, pause, resume and trigger.
import type { FastifyInstance } from 'fastify';
import { reasonBody, resumeBody, scheduleHistoryQuery, triggerBody } from '../schemas.js';
import type { ScheduleConfig } from '../../config/fleet-schema.js';
import type { LoadedFleet } from '../../config/load-fleet.js';
import { ConflictError, NotFoundError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { QueueSet } from '../../queues/queue-set.js';
import type { Fire, ScheduleRepository, ScheduleState } from '../../registry/schedules.js';
import type { MarketDataRepository } from '../../registry/market-data.js';
import { catchUp } from '../../scheduler/catch-up.js';
import { fireSchedule, type FireDeps } from '../../scheduler/fire.js';
import { nextFires } from '../../scheduler/fire-times.js';
import { parseInput } from '../../validation.js';
import { actorOf } from '../auth.js';

export interface ScheduleRouteDeps {
  fleet: LoadedFleet;
  queues: QueueSet;
  schedules: ScheduleRepository;
  logger: Logger;
  marketData?: MarketDataRepository;
}

function view(name: string, s: ScheduleConfig, state: ScheduleState | undefined, last: Fire | undefined) {
  return {
    name,
    description: s.description ?? null,
    cron: s.cron ?? null,
    timezone: s.timezone,
    enqueue: s.enqueue,
    overlap: s.overlap,
    catchUp: s.catchUp,
    paused: state?.paused ? { by: state.pausedBy, reason: state.pausedReason, at: state.pausedAt } : null,
    // An on-demand schedule (no cron) only fires when triggered.
    nextFires: state?.paused ? [] : nextFires(s, 5, new Date()).map((d) => d.toISOString()),
    lastFire: last ?? null,
  };
}

export async function scheduleRoutes(app: FastifyInstance, deps: ScheduleRouteDeps): Promise<void> {
  const fireDeps: FireDeps = deps;
  const find = (name: string): ScheduleConfig => {
    const s = deps.fleet.schedules[name];
    if (!s) throw new NotFoundError(`no schedule "${name}"; known: ${Object.keys(deps.fleet.schedules).join(', ')}`);
    return s;
  };

  app.get('/api/schedules', { config: { access: 'read' } }, async () => {
    const [states, lasts] = await Promise.all([deps.schedules.allStates(), deps.schedules.lastFires()]);
    return { schedules: Object.entries(deps.fleet.schedules).map(([name, s]) => view(name, s, states.get(name), lasts.get(name))) };
  });

  app.get<{ Params: { name: string } }>('/api/schedules/:name', { config: { access: 'read' } }, async (request) => {
    const name = request.params.name;
    const s = find(name);
    const { limit } = parseInput(scheduleHistoryQuery, request.query, 'query');
    const [state, history] = await Promise.all([deps.schedules.state(name), deps.schedules.history(name, limit)]);
    return { ...view(name, s, state, history[0]), history };
  });

  app.post<{ Params: { name: string } }>('/api/schedules/:name/pause', { config: { access: 'operate' } }, async (request) => {
    const name = request.params.name;
    find(name);
    const { reason } = parseInput(reasonBody, request.body ?? {}, 'body');
    const state = await deps.schedules.pause(name, `api (${actorOf(request)})`, reason ?? null);
    return { name, paused: { by: state.pausedBy, reason: state.pausedReason, at: state.pausedAt } };
  });

  app.post<{ Params: { name: string } }>('/api/schedules/:name/resume', { config: { access: 'operate' } }, async (request) => {
    const name = request.params.name;
    const s = find(name);
    const body = parseInput(resumeBody, request.body ?? {}, 'body');
    // Catching up enqueues: with Redis away refuse before resuming, rather than resume and fail.
    if (body.catchUp) deps.queues.assertReachable();
    const { wasPaused, pausedAt } = await deps.schedules.resume(name);
    let caughtUp: string[] = [];
    // Only when asked: fires missed while paused are replayed by the schedule's catch-up policy.
    if (body.catchUp && wasPaused && pausedAt && s.cron) {
      const { enqueued } = await catchUp(fireDeps, name, s, new Date(pausedAt), new Date(), 'resume');
      caughtUp = enqueued.flatMap((e) => e.jobIds);
    }
    return { name, paused: null, wasPaused, caughtUp };
  });

  app.post<{ Params: { name: string } }>('/api/schedules/:name/trigger', { config: { access: 'operate' } }, async (request, reply) => {
    const name = request.params.name;
    const s = find(name);
    const { force } = parseInput(triggerBody, request.body ?? {}, 'body');
    // A fire is claimed in Postgres before it is enqueued: with Redis away refuse before claiming,
    // so a refused trigger leaves no failed fire behind.
    deps.queues.assertReachable();
    const result = await fireSchedule(fireDeps, name, s, {
      scheduledFor: new Date(),
      source: 'trigger',
      manual: true,
      actor: `api (${actorOf(request)})`,
      force,
    });
    if (result.outcome === 'skipped') throw new ConflictError(`${result.reason}; send {"force": true} to run anyway`);
    if (result.outcome === 'failed') return reply.status(503).send({ error: 'unavailable', message: result.reason });
    return reply.status(201).send({ name, outcome: result.outcome, jobIds: result.jobIds, scheduledFor: result.fire?.scheduledFor });
  });
}
