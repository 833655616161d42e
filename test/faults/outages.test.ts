// Issue 13, item 6: a Postgres outage is a clear 503, never a 500 or a hang; Bull Board during a
// Redis outage is a 503 naming Redis, and a black-holed Redis hangs no request. Nemeses: Postgres
// refused (the relay refuses connections), Postgres black-holed (the relay accepts and holds
// connections but forwards nothing), Redis refused, Redis black-holed. Each round sends a valid request to every Postgres-backed route at once and counts
// how each was answered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRODUCER_COMMAND_TIMEOUT_MS } from '../../src/redis.js';
import { POSTGRES_BOUNDS } from '../../src/registry/pool.js';
import { asOperator, OPERATOR } from '../helpers/api.js';
import { waitFor } from '../helpers/wait.js';
import { fillPool, HEALTH_ROUTES, POSTGRES_ROUTES, startProxiedApi, tally, type ProxiedApi, type RouteCall } from './harness.js';

const ALL = [...POSTGRES_ROUTES, ...HEALTH_ROUTES];
/** Longest a request may take while Postgres is silent: a pool wait, one unanswered query. */
const SILENT_DEADLINE_MS = POSTGRES_BOUNDS.connectMs + POSTGRES_BOUNDS.statementMs + POSTGRES_BOUNDS.readMarginMs + 3000;
/** Health answers within its probes' deadline (1 s) whatever Postgres does. */
const HEALTH_DEADLINE_MS = 2500;

let p: ProxiedApi;
beforeAll(async () => {
  p = await startProxiedApi('outage');
});
afterAll(async () => {
  await p.close();
});

/** Waits until the service answers again through a healed link: health 200 and a read 200. */
async function recovered(): Promise<void> {
  await waitFor('the API to answer 200 again', async () => {
    const [health, list] = await Promise.all([
      p.api.app.inject({ method: 'GET', url: '/api/health' }),
      p.api.app.inject({ method: 'GET', url: '/api/checkpoints', headers: asOperator }),
    ]);
    return health.statusCode === 200 && list.statusCode === 200;
  });
}

describe('with Postgres reachable', () => {
  it('every connection carries the statement bounds', async () => {
    const { rows } = await p.api.pool.query<{ statement: string; idle: string }>(
      "select current_setting('statement_timeout') as statement, current_setting('idle_in_transaction_session_timeout') as idle",
    );
    expect(rows[0]).toEqual({ statement: `${POSTGRES_BOUNDS.statementMs / 1000}s`, idle: `${POSTGRES_BOUNDS.idleInTransactionMs / 60_000}min` });
  });

  it('every request of the table is valid: none answers 5xx', async () => {
    const { counts, byRoute, settled } = await tally(p.api, ALL, 'postgres', SILENT_DEADLINE_MS);
    await settled;
    expect(counts['answered below 500'], JSON.stringify(byRoute, null, 1)).toBe(ALL.length);
  });
});

describe('nemesis: Postgres refuses connections', () => {
  it('answers every Postgres-backed route with a 503 naming Postgres, within the connect bound', async () => {
    await p.postgres.cut();
    let settled: Promise<unknown> = Promise.resolve();
    try {
      const round = await tally(p.api, ALL, 'postgres', POSTGRES_BOUNDS.connectMs + 2000);
      settled = round.settled;
      const why = JSON.stringify(round.byRoute, null, 1);
      expect(round.counts['other 5xx'], why).toBe(0);
      expect(round.counts['no answer within the deadline'], why).toBe(0);
      expect(round.counts['503 naming the service'], why).toBe(ALL.length);
    } finally {
      await p.postgres.restore();
      await settled;
    }
    await recovered();
  });
});

describe('nemesis: the path to Postgres is black-holed', () => {
  it('answers every Postgres-backed route with a 503 naming Postgres within the bounds, health within its deadline, and recovers on heal', async () => {
    // Pooled connections open and idle before the fault: the case that used to hang.
    expect(await fillPool(p)).toBe(10);
    p.postgres.blackHole();
    const settled: Promise<unknown>[] = [];
    try {
      const [routes, health] = await Promise.all([
        tally(p.api, POSTGRES_ROUTES, 'postgres', SILENT_DEADLINE_MS),
        tally(p.api, HEALTH_ROUTES, 'postgres', HEALTH_DEADLINE_MS),
      ]);
      settled.push(routes.settled, health.settled);
      const why = JSON.stringify({ ...routes.byRoute, ...health.byRoute }, null, 1);
      expect(routes.counts['other 5xx'] + health.counts['other 5xx'], why).toBe(0);
      expect(routes.counts['no answer within the deadline'] + health.counts['no answer within the deadline'], why).toBe(0);
      expect(routes.counts['503 naming the service'] + health.counts['503 naming the service'], why).toBe(ALL.length);
    } finally {
      p.postgres.heal();
      await Promise.all(settled);
    }
    await recovered();
  });
});

describe('nemesis: Redis refuses connections, at Bull Board', () => {
  const basic = { authorization: `Basic ${Buffer.from(`ops:${OPERATOR}`).toString('base64')}` };
  const BOARD = [
    { method: 'GET', url: '/admin/queues/api/queues' },
    { method: 'GET', url: '/admin/queues/api/redis/stats' },
    { method: 'GET', url: '/admin/queues/api/queues/backtest/backtest.nope' },
    { method: 'PUT', url: '/admin/queues/api/queues/backtest/pause' },
    { method: 'PUT', url: '/admin/queues/api/queues/backtest/retry/failed' },
  ] as const;

  it('answers its API with a 503 naming Redis, never a 500 with the driver’s message', async () => {
    await p.redis.cut();
    try {
      await waitFor('the producer connection to notice', () => p.api.queues.connection.status !== 'ready');
      const answers = await Promise.all(BOARD.map((r) => p.api.app.inject({ ...r, headers: basic })));
      const statuses = answers.map((a, i) => `${BOARD[i]!.method} ${BOARD[i]!.url}: ${a.statusCode} ${a.body.slice(0, 120)}`);
      const named = answers.filter((a) => a.statusCode === 503 && /Redis/.test((a.json() as { message: string }).message));
      const otherFaults = answers.filter((a) => a.statusCode >= 500 && a.statusCode !== 503);
      expect(otherFaults, statuses.join('\n')).toHaveLength(0);
      expect(named, statuses.join('\n')).toHaveLength(BOARD.length);
      expect(answers.map((a) => a.json())).toEqual(BOARD.map(() => ({ error: 'unavailable', message: 'Redis is unreachable' })));
    } finally {
      await p.redis.restore();
    }
    await waitFor('Redis to be back', () => p.api.queues.connection.status === 'ready');
    const back = await p.api.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: basic });
    expect(back.statusCode).toBe(200);
  });
});

describe('nemesis: the path to Redis is black-holed', () => {
  // Routes that read or write Redis through the producer connection, whose socket stays "ready"
  // while nothing comes back.
  const REDIS_ROUTES: RouteCall[] = [
    { name: 'list jobs', method: 'GET', url: '/api/jobs?kind=backtest' },
    { name: 'one job', method: 'GET', url: '/api/jobs/backtest.nope' },
    { name: 'workers', method: 'GET', url: '/api/workers' },
    { name: 'enqueue a backtest', method: 'POST', url: '/api/jobs/backtest', payload: { model: 'model-a', symbols: ['SPY'] } },
    { name: 'cancel a job', method: 'POST', url: '/api/jobs/backtest.nope/cancel' },
    { name: 'Bull Board queues', method: 'GET', url: '/admin/queues/api/queues' },
  ];
  /** A command unanswered for its bound, plus the rest of the request. */
  const DEADLINE_MS = PRODUCER_COMMAND_TIMEOUT_MS + 2000;

  it('answers every Redis-backed route with a 503 naming Redis within the command bound, and recovers on heal', async () => {
    p.redis.blackHole();
    let settled: Promise<unknown> = Promise.resolve();
    try {
      const round = await tally(p.api, REDIS_ROUTES, 'redis', DEADLINE_MS);
      settled = round.settled;
      const why = JSON.stringify(round.byRoute, null, 1);
      expect(round.counts['no answer within the deadline'], why).toBe(0);
      expect(round.counts['other 5xx'], why).toBe(0);
      expect(round.counts['503 naming the service'], why).toBe(REDIS_ROUTES.length);
    } finally {
      p.redis.heal();
      await settled;
    }
    await waitFor('the API to read Redis again', async () => (await p.api.app.inject({ method: 'GET', url: '/api/workers', headers: asOperator })).statusCode === 200);
  });
});
