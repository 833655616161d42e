// Issue 13, item 7: an error changes nothing. Nemeses: Postgres refused, Postgres black-holed,
// Redis refused. Each round sends the writes that touch both Postgres and Redis (research
// pipelines, training on fresh data, pause, resume with catch-up, trigger) while the fault lasts,
// then counts, against a snapshot taken before, the jobs enqueued and the rows written by the
// requests that failed. Postgres is read directly (not through the relay) and Redis after heal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_BOUNDS } from '../../src/registry/pool.js';
import { asOperator, countAllJobs } from '../helpers/api.js';
import { waitFor } from '../helpers/wait.js';
import { fillPool, startProxiedApi, tally, type ProxiedApi, type RouteCall } from './harness.js';

const research = (n: number): RouteCall => ({
  name: `research pipeline ${n}`,
  method: 'POST',
  url: '/api/pipelines/research',
  payload: { model: 'model-a', primarySymbol: 'AAPL', symbols: ['AAPL', 'MSFT'], params: { run: n } },
});
const trainFresh: RouteCall = { name: 'training on fresh data', method: 'POST', url: '/api/jobs/training', payload: { model: 'fresh' } };
const pause: RouteCall = { name: 'pause', method: 'POST', url: '/api/schedules/nightly/pause', payload: { reason: 'drill' } };
const resume: RouteCall = { name: 'resume with catch-up', method: 'POST', url: '/api/schedules/nightly/resume', payload: { catchUp: true } };
const trigger: RouteCall = { name: 'trigger', method: 'POST', url: '/api/schedules/nightly/trigger', payload: { force: true } };

/** Every write that needs Postgres. */
const POSTGRES_WRITES = [research(1), research(2), research(3), trainFresh, pause, resume, trigger];
/** Every write that needs Redis as well (a pause alone does not). */
const REDIS_WRITES = [research(1), research(2), research(3), trainFresh, resume, trigger];

const SILENT_DEADLINE_MS = POSTGRES_BOUNDS.connectMs + POSTGRES_BOUNDS.statementMs + POSTGRES_BOUNDS.readMarginMs + 3000;

let p: ProxiedApi;
beforeAll(async () => {
  p = await startProxiedApi('atomic');
});
afterAll(async () => {
  await p.close();
});

interface Effects {
  jobs: number;
  pipelines: number;
  fires: number;
  scheduleStates: string;
}

/** What a request could have changed: jobs in every queue, and the rows of the tables it writes. */
async function effects(): Promise<Effects> {
  await waitFor('Redis through the relay', () => p.api.queues.connection.status === 'ready');
  const count = async (table: string) => Number((await p.db.pool.query<{ n: string }>(`select count(*) as n from ${table}`)).rows[0]!.n);
  const states = await p.db.pool.query('select schedule, paused, paused_by, paused_reason, paused_at, resumed_at from schedule_state order by schedule');
  return { jobs: await countAllJobs(p.api), pipelines: await count('pipelines'), fires: await count('schedule_fires'), scheduleStates: JSON.stringify(states.rows) };
}

function written(before: Effects, after: Effects) {
  return {
    jobsEnqueued: after.jobs - before.jobs,
    rowsWritten: after.pipelines - before.pipelines + (after.fires - before.fires) + (after.scheduleStates === before.scheduleStates ? 0 : 1),
  };
}

interface Round {
  calls: RouteCall[];
  service: 'postgres' | 'redis';
  deadlineMs: number;
  fault(): Promise<void> | void;
  heal(): Promise<void> | void;
}

/**
 * Sends the calls while the fault lasts, expects each to answer 503 naming the service, heals,
 * and counts what they changed after all: jobs enqueued and rows written.
 */
async function failedWrites(r: Round) {
  const before = await effects();
  await r.fault();
  let settled: Promise<unknown> = Promise.resolve();
  try {
    const round = await tally(p.api, r.calls, r.service, r.deadlineMs);
    settled = round.settled;
    expect(round.counts['503 naming the service'], JSON.stringify(round.byRoute, null, 1)).toBe(r.calls.length);
  } finally {
    await r.heal();
    await settled;
  }
  // Whatever the relay held reaches Postgres now: a statement that was only late must not commit.
  await waitFor('the API to answer health again', async () => (await p.api.app.inject({ method: 'GET', url: '/api/health' })).statusCode === 200);
  const after = await effects();
  return { changed: written(before, after), why: JSON.stringify({ before, after }, null, 1) };
}

describe('nemesis: Postgres refuses connections', () => {
  it('writes that answer 503 enqueue nothing and write nothing', async () => {
    const { changed, why } = await failedWrites({
      calls: POSTGRES_WRITES,
      service: 'postgres',
      deadlineMs: POSTGRES_BOUNDS.connectMs + 2000,
      fault: () => p.postgres.cut(),
      heal: () => p.postgres.restore(),
    });
    expect(changed, why).toEqual({ jobsEnqueued: 0, rowsWritten: 0 });
  });
});

describe('nemesis: the path to Postgres is black-holed', () => {
  it('writes that answer 503 enqueue nothing and write nothing, once healed too', async () => {
    // Every first statement then goes out on a held connection, to arrive after the heal.
    expect(await fillPool(p)).toBe(10);
    const { changed, why } = await failedWrites({
      calls: POSTGRES_WRITES,
      service: 'postgres',
      deadlineMs: SILENT_DEADLINE_MS,
      fault: () => p.postgres.blackHole(),
      heal: () => p.postgres.heal(),
    });
    expect(changed, why).toEqual({ jobsEnqueued: 0, rowsWritten: 0 });
  });
});

describe('nemesis: Redis refuses connections', () => {
  it('writes that answer 503 leave no pipeline row, no fire and no resumed schedule, and nothing is enqueued once Redis is back', async () => {
    const paused = await p.api.app.inject({ method: pause.method, url: pause.url, headers: asOperator, payload: pause.payload });
    expect(paused.statusCode).toBe(200);
    const { changed, why } = await failedWrites({
      calls: REDIS_WRITES,
      service: 'redis',
      deadlineMs: 5000,
      fault: async () => {
        await p.redis.cut();
        await waitFor('the producer connection to notice', () => p.api.queues.connection.status !== 'ready');
      },
      heal: () => p.redis.restore(),
    });
    expect(changed, why).toEqual({ jobsEnqueued: 0, rowsWritten: 0 });
  });
});

describe('a pause that Postgres refuses', () => {
  it('leaves no schedule_state row behind', async () => {
    // Past the API's schema, straight to the repository: Postgres cannot store a NUL byte.
    await expect(p.api.registry.schedules.pause('never-paused', 'test', 'a\u0000b')).rejects.toThrow();
    const { rows } = await p.db.pool.query("select 1 from schedule_state where schedule = 'never-paused'");
    expect(rows).toHaveLength(0);
  });
});
