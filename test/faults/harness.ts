// The fault suite's API: the real Redis and Postgres, each behind a TCP relay the test controls
// (cut, black-hole, heal), with a fleet that gives every Postgres-backed route something to do.
import type { LightMyRequestResponse } from 'fastify';
import { parseFleet, type LoadedFleet } from '../../src/config/load-fleet.js';
import { asOperator, startApi, type ApiHarness } from '../helpers/api.js';
import { createTestSchema, type TestSchema } from '../helpers/db.js';
import { REPO_ROOT, testFleetInput } from '../helpers/fleet.js';
import { deletePrefix } from '../helpers/redis.js';
import { DATABASE_URL, REDIS_URL, uniqueName } from '../helpers/servers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const base = testFleetInput();
/** The test fleet plus a model that trains on fresh data (enqueueing it reads Postgres) and a schedule. */
export const faultFleet: LoadedFleet = parseFleet(
  {
    ...base,
    models: {
      ...base.models,
      fresh: { ...base.models['model-b']!, checkpointDir: 'var/test-checkpoints/fresh', symbols: ['AAPL'], freshData: { timeframe: '1d', maxAgeHours: 1 } },
    },
    schedules: { nightly: { cron: '0 3 * * *', timezone: 'UTC', enqueue: { kind: 'training', model: 'model-b' }, overlap: 'allow' } },
  },
  '(fault suite)',
  REPO_ROOT,
);

export interface ProxiedApi {
  api: ApiHarness;
  /** Between the API and Postgres. */
  postgres: TcpProxy;
  /** Between the API and Redis. */
  redis: TcpProxy;
  db: TestSchema;
  close(): Promise<void>;
}

function through(url: string, proxy: TcpProxy): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(proxy.port);
  return u.toString();
}

const relayTo = async (url: string, defaultPort: number) => {
  const u = new URL(url);
  const proxy = new TcpProxy(u.hostname, Number(u.port || defaultPort));
  await proxy.start();
  return proxy;
};

/** The service's default pool size: a black-hole then finds as many idle connections to hold. */
const POOL_MAX = 10;

/** Opens every connection of the pool and leaves them idle: what a black-hole catches in production. */
export async function fillPool(p: ProxiedApi): Promise<number> {
  await Promise.all(Array.from({ length: POOL_MAX }, () => p.api.pool.query('select pg_sleep(0.05)')));
  return p.api.pool.idleCount;
}

export async function startProxiedApi(label: string): Promise<ProxiedApi> {
  const db = await createTestSchema(label);
  const postgres = await relayTo(DATABASE_URL, 5432);
  const redis = await relayTo(REDIS_URL, 6379);
  const prefix = uniqueName(label);
  const api = await startApi({ fleet: faultFleet, prefix, schema: db.schema, poolMax: POOL_MAX, databaseUrl: through(DATABASE_URL, postgres), redisUrl: through(REDIS_URL, redis) });
  return {
    api,
    postgres,
    redis,
    db,
    async close() {
      // Heal first, so every connection closes the ordinary way; then break what is left.
      postgres.heal();
      redis.heal();
      try {
        await api.close();
      } finally {
        await postgres.cut();
        await redis.cut();
        await db.drop();
        await deletePrefix(prefix);
      }
    },
  };
}

export interface RouteCall {
  name: string;
  method: 'GET' | 'POST';
  url: string;
  payload?: object;
}

export const PIPELINE_ID = '00000000-0000-4000-8000-000000000000';

/** A valid request to every route that reads or writes Postgres (the health routes apart). */
export const POSTGRES_ROUTES: RouteCall[] = [
  { name: 'list checkpoints', method: 'GET', url: '/api/checkpoints' },
  { name: 'feed', method: 'GET', url: '/api/checkpoints/feed' },
  { name: 'feed, long poll', method: 'GET', url: '/api/checkpoints/feed?wait=2' },
  { name: 'one checkpoint', method: 'GET', url: '/api/checkpoints/1' },
  { name: 'report a load', method: 'POST', url: '/api/checkpoints/1/loaded', payload: { instance: 'fincoll-1', details: { note: 'drill' } } },
  { name: 'promote', method: 'POST', url: '/api/checkpoints/1/promote', payload: { reason: 'drill' } },
  { name: 'roll back', method: 'POST', url: '/api/models/model-a/rollback', payload: { reason: 'drill' } },
  { name: 'list schedules', method: 'GET', url: '/api/schedules' },
  { name: 'one schedule', method: 'GET', url: '/api/schedules/nightly' },
  { name: 'pause', method: 'POST', url: '/api/schedules/nightly/pause', payload: { reason: 'drill' } },
  { name: 'resume', method: 'POST', url: '/api/schedules/nightly/resume', payload: { catchUp: true } },
  { name: 'trigger', method: 'POST', url: '/api/schedules/nightly/trigger', payload: { force: true } },
  { name: 'data-sync view', method: 'GET', url: '/api/data-sync' },
  { name: 'start a research pipeline', method: 'POST', url: '/api/pipelines/research', payload: { model: 'model-a', primarySymbol: 'AAPL', symbols: ['AAPL', 'MSFT'] } },
  { name: 'one pipeline', method: 'GET', url: `/api/pipelines/${PIPELINE_ID}` },
  { name: 'list backtests', method: 'GET', url: '/api/backtests?since=2024-01-01' },
  { name: 'backtest summary', method: 'GET', url: '/api/backtests/summary?groupBy=symbol' },
  { name: 'enqueue training on fresh data', method: 'POST', url: '/api/jobs/training', payload: { model: 'fresh' } },
];

export const HEALTH_ROUTES: RouteCall[] = [
  { name: 'health', method: 'GET', url: '/api/health' },
  { name: 'system health', method: 'GET', url: '/api/system/health' },
];

export type Outcome = 'answered below 500' | '503 naming the service' | '503 not naming it' | 'other 5xx' | 'no answer within the deadline';

export interface Tally {
  counts: Record<Outcome, number>;
  /** Route name by outcome, for the failure message. */
  byRoute: Record<string, string>;
  /** Resolves when every request has answered, late ones too: await it once the fault is healed. */
  settled: Promise<unknown>;
}

/**
 * Sends every call at once and sorts each answer: below 500, a 503 naming `service` (in its
 * message, or in `down` for the health routes), another 503, another 5xx, or none within
 * `deadlineMs`. It returns at the deadline; a request still hanging then is counted, not awaited.
 */
export async function tally(api: ApiHarness, calls: RouteCall[], service: 'postgres' | 'redis', deadlineMs: number): Promise<Tally> {
  const counts: Record<Outcome, number> = {
    'answered below 500': 0,
    '503 naming the service': 0,
    '503 not naming it': 0,
    'other 5xx': 0,
    'no answer within the deadline': 0,
  };
  const byRoute: Record<string, string> = {};
  const answers = calls.map((call) =>
    api.app.inject({ method: call.method, url: call.url, headers: asOperator, ...(call.payload ? { payload: call.payload } : {}) }),
  );
  await Promise.all(
    answers.map(async (answer, i) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), deadlineMs)));
      const res = await Promise.race([answer, timeout]).finally(() => clearTimeout(timer));
      const outcome = classify(res, service);
      counts[outcome]++;
      byRoute[calls[i]!.name] = res === 'timeout' ? outcome : `${outcome} (${res.statusCode} ${res.body.slice(0, 120)})`;
    }),
  );
  return { counts, byRoute, settled: Promise.allSettled(answers) };
}

function classify(res: LightMyRequestResponse | 'timeout', service: string): Outcome {
  if (res === 'timeout') return 'no answer within the deadline';
  if (res.statusCode < 500) return 'answered below 500';
  if (res.statusCode !== 503) return 'other 5xx';
  const body = res.json() as { message?: string; down?: string[] };
  const names = new RegExp(service, 'i').test(body.message ?? '') || (body.down ?? []).includes(service);
  return names ? '503 naming the service' : '503 not naming it';
}
