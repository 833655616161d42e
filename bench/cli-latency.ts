// 8. The command's wall time, as an operator or a script runs it (a new node process each time):
// `--help`, and `jobs`, `workers`, `schedules`, `checkpoints` against a running API. Before (the
// baseline commit: its sources through tsx) against after (this checkout's dist/), interleaved
// run by run, so that the load of a shared machine falls on both alike. Medians of wall time, and
// of CPU time (user + system), which a busy machine inflates less.
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import { asOperator, OPERATOR, startApi } from '../test/helpers/api.js';
import { ensureFreshBuild } from '../test/helpers/fresh-build.js';
import { BASELINE_REF, baselineTree, builtTree, type Tree } from './baseline-tree.js';
import { type BenchResult, Cleanup, fmt, percentile, REPO_ROOT } from './lib.js';

const run = promisify(execFile);

const COMMANDS: { args: string[]; runs: number; goalSeconds?: number }[] = [
  { args: ['--help'], runs: Number(process.env.BENCH_CLI_RUNS || 15), goalSeconds: 0.3 },
  { args: ['jobs'], runs: Number(process.env.BENCH_CLI_RUNS || 15), goalSeconds: 0.3 },
  { args: ['workers'], runs: 5 },
  { args: ['schedules'], runs: 5 },
  { args: ['checkpoints'], runs: 5 },
];

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds of this process's finished children so far (cutime + cstime of /proc/self/stat). */
function childrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3, the state
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

interface Times {
  wall: number[];
  cpu: number[];
}

async function timeOnce(tree: Tree, args: string[], env: Record<string, string>, into: Times): Promise<void> {
  const cpu0 = childrenCpuSeconds();
  const t0 = performance.now();
  await run(process.execPath, [tree.bin, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 60_000 });
  into.wall.push((performance.now() - t0) / 1000);
  into.cpu.push(childrenCpuSeconds() - cpu0);
}

const summary = (t: Times) =>
  `median ${fmt(percentile(t.wall, 50), 3)} s (min ${fmt(Math.min(...t.wall), 3)}, max ${fmt(Math.max(...t.wall), 3)}, ${t.wall.length} runs); CPU ${fmt(percentile(t.cpu, 50), 2)} s`;

export async function cliLatencyBench(budgetMs: number): Promise<BenchResult> {
  const deadline = Date.now() + budgetMs - 5_000;
  ensureFreshBuild(REPO_ROOT);
  const cleanup = new Cleanup();
  try {
    const before = baselineTree();
    cleanup.add(async () => before.close());
    const api = await startApi();
    cleanup.add(() => api.close());
    const url = await api.app.listen({ port: 0, host: '127.0.0.1' });
    for (let i = 0; i < 20; i++) {
      await api.app.inject({ method: 'POST', url: '/api/jobs/data-sync', headers: asOperator, payload: { symbol: `CLI${i}` } });
    }
    const env = { CAELUM_API_URL: url, CAELUM_API_TOKEN: OPERATOR, LOG_LEVEL: 'error' };
    const load = [os.loadavg()[0]!];
    const rows: BenchResult['rows'] = [];
    for (const { args, runs, goalSeconds } of COMMANDS) {
      const times: Record<'before' | 'after', Times> = { before: { wall: [], cpu: [] }, after: { wall: [], cpu: [] } };
      for (let i = 0; i < runs && Date.now() < deadline; i++) {
        // Alternate which goes first, so neither always runs on the heels of the other.
        const order = i % 2 ? (['after', 'before'] as const) : (['before', 'after'] as const);
        for (const which of order) await timeOnce(which === 'before' ? before : builtTree, args, env, times[which]);
      }
      load.push(os.loadavg()[0]!);
      const ours = percentile(times.after.wall, 50);
      const base = percentile(times.before.wall, 50);
      rows.push({
        figure: `8. CLI wall time: caelum-scheduler ${args.join(' ')}${args[0] === '--help' ? '' : ' (against a running API)'}`,
        ours: `${summary(times.after)}, dist/`,
        baseline: `${summary(times.before)}, ${BASELINE_REF} through tsx`,
        ratio: `${fmt(ours / base, 3)}x`,
        goal: goalSeconds ? `<= ${goalSeconds} s median: ${ours <= goalSeconds ? 'met' : 'MISSED'}` : 'report',
      });
    }
    return {
      rows,
      notes: [
        `CLI wall time: a new \`node bin/caelum-scheduler.js …\` process per run, timed from spawn to exit by the parent, CPU from the parent's cutime + cstime; before and after alternate run by run; ` +
          `the API is the test harness's, on the real Redis and Postgres, with 20 jobs; 1-minute load average during the runs ${load.map((l) => fmt(l, 2)).join(' → ')} on ${os.availableParallelism()} cores.`,
      ],
    };
  } finally {
    await cleanup.run();
  }
}
