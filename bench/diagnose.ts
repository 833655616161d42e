// Where the time goes: the parts of the missed goals, each measured alone on this machine.
// - spawning a child the way our worker does (execa, setpriv --pdeathsig, detached group, line
//   readers) against a bare child_process.spawn, for `true` and for `node child-start.mjs`;
// - one request of each hot API route through app.inject (no network, no load generator):
//   the server-side cost of a request;
// - the feed's Postgres query alone.
import { spawn } from 'node:child_process';
import { runChild } from '../src/workers/child-runner.js';
import { createCheckpointRepository } from '../src/registry/checkpoints.js';
import { startBenchApi, OPERATOR, READER } from './api.js';
import { jobData, NOOP_COMMAND } from './dispatch.js';
import { CHILD_START_COMMAND } from './start-latency.js';
import { cpuFleet } from './fleets.js';
import { type BenchResult, Cleanup, createSchema, deletePrefix, fmt, percentile, REPO_ROOT, uniqueName } from './lib.js';

async function timeMany(n: number, deadline: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n && Date.now() < deadline; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

const bareSpawn = (argv: string[]) =>
  new Promise<void>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.resume();
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', () => resolve());
  });

const oursSpawn = (argv: string[]) =>
  runChild({
    argv,
    cwd: REPO_ROOT,
    env: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string')),
    timeoutMs: 30_000,
    graceMs: 1000,
    signal: new AbortController().signal,
    onEvent: () => {},
    onLog: () => {},
  });

export async function diagnoseBench(budgetMs: number): Promise<BenchResult> {
  const deadline = Date.now() + budgetMs - 3000;
  const share = (f: number) => Date.now() + f * budgetMs;
  const rows: BenchResult['rows'] = [];
  const med = (xs: number[]) => `${fmt(percentile(xs, 50), 2)} ms (p50 of ${xs.length})`;
  for (const [label, argv, n] of [
    ['`true`', NOOP_COMMAND, 100],
    ['`node bench/child-start.mjs`', CHILD_START_COMMAND, 20],
  ] as const) {
    const ours = await timeMany(n, Math.min(deadline, share(0.2)), () => oursSpawn([...argv]));
    const bare = await timeMany(n, Math.min(deadline, share(0.2)), () => bareSpawn([...argv]));
    rows.push({
      figure: `diagnosis: one child run of ${label}, sequential (spawn to exit)`,
      ours: `${med(ours)} runChild (setpriv, process group, line readers)`,
      baseline: `${med(bare)} child_process.spawn`,
      ratio: `${fmt(percentile(ours, 50) / percentile(bare, 50), 2)}x`,
      goal: 'report',
    });
  }

  const cleanup = new Cleanup();
  try {
    const db = await createSchema('diag');
    cleanup.add(() => db.drop());
    const prefix = uniqueName('diag');
    cleanup.add(() => deletePrefix(prefix));
    const api = await startBenchApi(cpuFleet(1, NOOP_COMMAND), prefix, db.schema);
    cleanup.add(() => api.close());
    const queue = api.queues.get('backtest')!.queue;
    const body = jobData().payload;
    const post = await timeMany(500, deadline, () =>
      api.app.inject({ method: 'POST', url: '/api/jobs/backtest', headers: { authorization: `Bearer ${OPERATOR}` }, payload: body }),
    );
    const add = await timeMany(500, deadline, () => queue.add('backtest', jobData()));
    rows.push({
      figure: 'diagnosis: one POST /api/jobs/backtest via app.inject, sequential',
      ours: med(post),
      baseline: `${med(add)} queue.add`,
      ratio: `${fmt(percentile(post, 50) / percentile(add, 50), 2)}x`,
      goal: 'report',
    });
    const first = await api.app.inject({ method: 'GET', url: '/api/checkpoints/feed', headers: { authorization: `Bearer ${READER}` } });
    const etag = String(first.headers.etag);
    const feed304 = await timeMany(500, deadline, () =>
      api.app.inject({ method: 'GET', url: '/api/checkpoints/feed', headers: { authorization: `Bearer ${READER}`, 'if-none-match': etag } }),
    );
    const repo = createCheckpointRepository(api.pool);
    const query = await timeMany(500, deadline, () => repo.feed({ after: 0, limit: 100 }));
    rows.push({
      figure: 'diagnosis: one 304 feed poll via app.inject, sequential',
      ours: med(feed304),
      baseline: `${med(query)} its Postgres query alone (checkpoints.feed)`,
      ratio: `${fmt(percentile(feed304, 50) / percentile(query, 50), 2)}x`,
      goal: 'report',
    });
  } finally {
    await cleanup.run();
  }
  return { rows, notes: ['diagnosis rows: parts of the figures above measured alone, sequentially, no concurrent load.'] };
}
