// The Fastify app: auth, routes, Bull Board and the error mapping, built from the dependencies
// it is handed. Listening is the caller's business (tests use app.inject()).
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { LoadedFleet } from '../config/load-fleet.js';
import type { Logger } from '../logger.js';
import type { QueueSet } from '../queues/queue-set.js';
import type { TokenEntry } from '../config/tokens.js';
import { Authenticator, checkAccess, trackRouteAccess, type RouteAccess } from './auth.js';
import { bullBoard } from './bull-board.js';
import { answerFrameworkError, installErrorHandler } from './error-handler.js';
import { MAX_JOB_ID_LENGTH } from '../queues/placement.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { workerRoutes } from './routes/workers.js';
import { drainRoutes } from './routes/drains.js';
import { checkpointRoutes } from './routes/checkpoints.js';
import { scheduleRoutes } from './routes/schedules.js';
import { dataSyncRoutes } from './routes/data-sync.js';
import { metricsRoutes } from './routes/metrics.js';
import { systemHealthRoutes } from './routes/system-health.js';
import type { Metrics } from '../metrics.js';
import { openApiDocument } from './openapi.js';
import { pipelineRoutes } from './routes/pipelines.js';
import { backtestRoutes } from './routes/backtests.js';
import { authRoutes } from './routes/auth.js';
import { fleetRoutes } from './routes/fleet.js';
import { failureRoutes } from './routes/failures.js';
import { VERSION } from '../version.js';
import type { FencedLock } from '../locks/fenced-lock.js';
import type { Registry } from '../registry/index.js';
import type { FeedIndex } from '../checkpoints/feed-index.js';
import type { FeedSignal } from '../checkpoints/feed-signal.js';
import { RequestLog, type RequestLogLevel } from './request-log.js';
import { loadConsoleAssets } from './console/assets.js';
import { consoleRoutes } from './console/plugin.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route with the access it declares (each must declare one: see auth.ts). */
    routeAccess(): RouteAccess[];
  }
}

export interface ApiDeps {
  fleet: LoadedFleet;
  queues: QueueSet;
  redis: Redis;
  pool: pg.Pool;
  logger: Logger;
  /** The tokens the API accepts (src/config/tokens.ts). */
  tokens: readonly TokenEntry[];
  registry: Registry;
  feed: FeedSignal;
  /** The newest feed sequence per model, for the feed's 304s without Postgres. */
  feedIndex: FeedIndex;
  metrics: Metrics;
  /** The process's one fenced lock: the data-sync view lists its holders. */
  locks: FencedLock;
  /** One line per request at this level (default info); dev and demo log them at debug. */
  requestLogLevel?: RequestLogLevel;
}

/** Request bodies are small JSON documents; anything larger is a mistake or an attack. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT_BYTES,
    // Fastify's default (100) answered 414 for valid job ids, the longest parameter any route takes.
    routerOptions: { maxParamLength: MAX_JOB_ID_LENGTH },
    frameworkErrors: answerFrameworkError,
    logController: new RequestLog(deps.requestLogLevel ?? 'info'),
  });
  const routeTable = trackRouteAccess(app);
  app.decorate('routeAccess', routeTable);
  installErrorHandler(app, deps.queues.connection);
  const auth = new Authenticator(deps.tokens);
  await app.register(async (api) => {
    checkAccess(api, auth);
    await authRoutes(api);
    await healthRoutes(api, deps);
    await fleetRoutes(api, deps);
    await failureRoutes(api, deps);
    await jobRoutes(api, { ...deps, marketData: deps.registry.marketData });
    await dataSyncRoutes(api, deps);
    await workerRoutes(api, deps);
    await drainRoutes(api, deps);
    await checkpointRoutes(api, deps);
    await pipelineRoutes(api, deps);
    await backtestRoutes(api, deps);
    await systemHealthRoutes(api, { ...deps, prefix: deps.queues.prefix, schedules: deps.registry.schedules });
    await scheduleRoutes(api, { ...deps, schedules: deps.registry.schedules, marketData: deps.registry.marketData });
  });
  await bullBoard(app, deps.queues, auth);
  await consoleRoutes(app, loadConsoleAssets());
  await metricsRoutes(app, deps);
  const doc = openApiDocument(deps.fleet, VERSION);
  // Public: it describes the contract and holds no data.
  app.get('/docs', { config: { access: 'public' } }, async () => doc);
  return app;
}
