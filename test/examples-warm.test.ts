// The Node examples as warm runners (README, "Warm runners"): one process takes job after job on
// standard input, with each job's variables, events tagged with its id, `done` after each; a job
// that fails fails alone. The same jobs run cold must report the same figures.
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/fleet.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-examples-warm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CAELUM_'))) as Record<string, string>;

interface Job {
  job: string;
  payload: Record<string, unknown>;
  env?: Record<string, string>;
}
const jobLine = (j: Job) =>
  JSON.stringify({ job: j.job, payload: j.payload, env: { CAELUM_JOB_ID: j.job, CAELUM_PAYLOAD: JSON.stringify(j.payload), ...j.env } }) + '\n';

/** Runs an example with `input` on stdin; killed if it outlives the deadline (a runner that ignores EOF). */
function run(argv: string[], input: string, env: Record<string, string>) {
  return execa('node', argv, { cwd: REPO_ROOT, env: { ...base, ...env }, extendEnv: false, input, reject: false, timeout: 30_000 });
}

const objects = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('examples/backtester.mjs as a warm runner', () => {
  const checkpoint = path.join(dir, 'ckpt.json');
  writeFileSync(checkpoint, JSON.stringify({ metrics: { val_accuracy: 0.9 } }));
  const jobs: Job[] = [
    { job: 'backtest.a', payload: { symbols: ['AAPL', 'MSFT'], timeframe: '1d' }, env: { CAELUM_CHECKPOINT_PATH: checkpoint } },
    { job: 'backtest.b', payload: { symbols: ['AAPL', 'NODATA'], timeframe: '1d' } },
    { job: 'backtest.c', payload: { symbols: ['AAPL', 'MSFT'], timeframe: '1d' } },
  ];

  it('runs each job with its own variables, tags its events, and fails only the failing job', async () => {
    const warm = await run(['examples/backtester.mjs', '--bars', '120'], jobs.map(jobLine).join(''), { CAELUM_RUNNER: 'warm' });
    expect(warm.exitCode).toBe(0);
    const out = objects(warm.stdout);
    expect(out.filter((o) => o.event === 'done')).toEqual([
      { event: 'done', job: 'backtest.a', ok: true },
      { event: 'done', job: 'backtest.b', ok: false, error: 'no bars for NODATA' },
      { event: 'done', job: 'backtest.c', ok: true },
    ]);
    expect(warm.stderr).toBe('no bars for NODATA');
    expect(out.every((o) => typeof o.job === 'string')).toBe(true);

    // Job for job, what a cold process reports for the same job, tagged.
    for (const j of [jobs[0]!, jobs[2]!]) {
      const cold = await run(['examples/backtester.mjs', '--bars', '120'], '', { CAELUM_PAYLOAD: JSON.stringify(j.payload), ...j.env });
      expect(cold.exitCode).toBe(0);
      expect(out.filter((o) => o.job === j.job && o.event !== 'done')).toEqual(objects(cold.stdout).map((o) => ({ ...o, job: j.job })));
    }
    // The checkpoint of job a tilted its returns; job c, without one, did not inherit it.
    const sharpe = (id: string) => (out.find((o) => o.job === id && o.event === 'result')!.metrics as { sharpe_ratio: number }).sharpe_ratio;
    expect(sharpe('backtest.a')).not.toBe(sharpe('backtest.c'));
  });

  it('fails a NODATA job cold with exit code 1 and the message on stderr', async () => {
    const cold = await run(['examples/backtester.mjs'], '', { CAELUM_PAYLOAD: JSON.stringify(jobs[1]!.payload) });
    expect([cold.exitCode, cold.stderr]).toEqual([1, 'no bars for NODATA']);
  });

  it('exits 2 on a line that is not a job, after the jobs before it', async () => {
    const warm = await run(['examples/backtester.mjs', '--bars', '40'], jobLine(jobs[2]!) + 'garbage\n' + jobLine(jobs[0]!), { CAELUM_RUNNER: 'warm' });
    expect(warm.exitCode).toBe(2);
    expect(objects(warm.stdout).filter((o) => o.event === 'done')).toEqual([{ event: 'done', job: 'backtest.c', ok: true }]);
    expect(warm.stderr).toMatch(/a line on standard input is not a job: not JSON/);
  });
});

describe('examples/data-syncer.mjs as a warm runner', () => {
  it('writes each job into its own output folder, for its own symbol and timeframe', async () => {
    const jobs: Job[] = ['AAPL', 'MSFT'].map((symbol, i) => ({
      job: `data-sync.${symbol}`,
      payload: { symbol, timeframe: i ? '1h' : '1d', source: 'example' },
      env: { CAELUM_OUTPUT_DIR: path.join(dir, symbol) },
    }));
    const warm = await run(['examples/data-syncer.mjs', '--rows', '5', '--delay-ms', '1'], jobs.map(jobLine).join(''), { CAELUM_RUNNER: 'warm' });
    expect([warm.exitCode, warm.stderr]).toEqual([0, '']);
    expect(readdirSync(path.join(dir, 'AAPL'))).toEqual(['AAPL-1d.csv']);
    expect(readdirSync(path.join(dir, 'MSFT'))).toEqual(['MSFT-1h.csv']);
    const results = objects(warm.stdout).filter((o) => o.event === 'result');
    expect(results.map((r) => [r.job, r.symbol, r.timeframe])).toEqual([
      ['data-sync.AAPL', 'AAPL', '1d'],
      ['data-sync.MSFT', 'MSFT', '1h'],
    ]);
  });
});
