// npm run simulate: plays workloads through the dispatch policy on a virtual clock (engine.ts) and
// prints, per workload, one row per policy side by side. The policy code is the worker's own
// (src/workers/policy/); see engine.ts for what the model includes and leaves out, report.ts for
// the definitions of the figures.
//
//   npm run simulate                                   every workload, every policy
//   npm run simulate -- --workload 8x4 --policies pool,backfill
//   npm run simulate -- --workload 512x8 --jobs 5000 --guard-ms 10000
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DISPATCH_POLICIES, type DispatchPolicy } from '../../src/config/dispatch-policy.js';
import { DEFAULT_HOST_WORKER_OPTIONS } from '../../src/workers/host-worker.js';
import { Simulation, type SimOptions } from './engine.js';
import { DEFINITIONS, figures, fmtMs, summaryTable, waitsTable, type PolicyFigures } from './report.js';
import { WORKLOADS, type Workload } from './workloads.js';

class UsageError extends Error {}

const USAGE = `usage: npm run simulate -- [--workload ${Object.keys(WORKLOADS).join(',')}] [--policies ${DISPATCH_POLICIES.join(',')}]
  [--jobs N] [--seed N] [--load 0.9] [--guard-ms N] [--overrun-ms N] [--hand-back-ms N] [--max-block-ms N]`;

function list<T extends string>(value: string | undefined, allowed: readonly T[], what: string): T[] {
  if (value === undefined) return [...allowed];
  const items = value.split(',').map((s) => s.trim());
  const bad = items.filter((s) => !(allowed as readonly string[]).includes(s));
  if (bad.length || items.length === 0) throw new UsageError(`unknown ${what} "${bad.join(', ')}"; known: ${allowed.join(', ')}`);
  return items as T[];
}

function number(value: string | undefined, what: string, check: (n: number) => boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${what} must be a number in range, got "${value}"`);
  return n;
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      workload: { type: 'string' },
      policies: { type: 'string' },
      jobs: { type: 'string' },
      seed: { type: 'string' },
      load: { type: 'string' },
      'guard-ms': { type: 'string' },
      'overrun-ms': { type: 'string' },
      'hand-back-ms': { type: 'string' },
      'max-block-ms': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const int = (n: number) => Number.isInteger(n) && n >= 0;
  return {
    help: values.help ?? false,
    workloads: list(values.workload, Object.keys(WORKLOADS), 'workload'),
    policies: list<DispatchPolicy>(values.policies, DISPATCH_POLICIES, 'policy'),
    overrides: {
      jobs: number(values.jobs, 'jobs', (n) => int(n) && n > 0),
      seed: number(values.seed, 'seed', int),
      load: number(values.load, 'load', (n) => n > 0 && n < 2),
    },
    guardMs: number(values['guard-ms'], 'guard-ms', int) ?? DEFAULT_HOST_WORKER_OPTIONS.starvationGuardMs,
    overrunMs: number(values['overrun-ms'], 'overrun-ms', int) ?? DEFAULT_HOST_WORKER_OPTIONS.backfillOverrunMs,
    handBackMs: number(values['hand-back-ms'], 'hand-back-ms', int) ?? 0,
    maxBlockMs: number(values['max-block-ms'], 'max-block-ms', (n) => int(n) && n > 0),
  };
}

function machine(): string {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return `nproc ${os.availableParallelism()}, ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}`;
}

function header(w: Workload, o: Omit<SimOptions, 'policy'>): string {
  const hosts = Object.values(w.fleet.hosts);
  const gpuPools = [...new Set(Object.values(w.fleet.models).map((m) => m.pool))].map((p) => `${p} (${w.fleet.pools[p]!.length} host${w.fleet.pools[p]!.length === 1 ? '' : 's'})`);
  return [
    `## ${w.title}`,
    '',
    `- fleet: ${hosts.length} hosts, ${hosts.reduce((n, h) => n + h.gpus.length, 0)} GPUs; GPU pools ${gpuPools.join(', ')}`,
    `- jobs: ${w.about}`,
    `- worker options: starvation guard ${fmtMs(o.starvationGuardMs)}, backfill overrun ${fmtMs(o.backfillOverrunMs)}, heartbeat ${fmtMs(o.heartbeatMs)}, hand-back ${fmtMs(o.handBackMs)}, longest block ${o.maxBlockMs === undefined ? 'none (wakes only)' : fmtMs(o.maxBlockMs)}`,
  ].join('\n');
}

/** The goals for the 512 x 8 workload, checked on its pool-wide-with-backfill row. */
function goals(rows: readonly PolicyFigures[]): string {
  const r = rows.find((x) => x.policy === 'backfill');
  if (!r) return '';
  const worst = (g: number) => r.sizes.find((s) => s.gpus === g)?.ratio.worst ?? NaN;
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  return [
    '',
    'Goals (backfill row):',
    `- busy >= 0.95 of the ideal: ${(r.usefulBusy / r.idealBusy).toFixed(3)}, ${verdict(r.usefulBusy / r.idealBusy >= 0.95)}`,
    `- worst 4-GPU wait <= 2x fair share: ${worst(4).toFixed(2)}x, ${verdict(worst(4) <= 2)}`,
    `- worst 8-GPU wait <= 2x fair share: ${worst(8).toFixed(2)}x, ${verdict(worst(8) <= 2)}`,
    `- decision p99 < 2 ms: ${(r.decide.p99 * 1000).toFixed(1)} µs, ${verdict(r.decide.p99 < 2)}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const started = performance.now();
  const out: string[] = [`# Dispatch policy simulation`, '', `machine: ${machine()}`, '', ...DEFINITIONS.map((d) => `- ${d}`)];
  for (const name of args.workloads) {
    const workload = await WORKLOADS[name]!(args.overrides);
    const base = {
      starvationGuardMs: args.guardMs,
      backfillOverrunMs: args.overrunMs,
      heartbeatMs: DEFAULT_HOST_WORKER_OPTIONS.heartbeatMs,
      handBackMs: args.handBackMs,
      ...(args.maxBlockMs !== undefined ? { maxBlockMs: args.maxBlockMs } : {}),
    };
    const rows: PolicyFigures[] = [];
    for (const policy of args.policies) {
      process.stderr.write(`[simulate] ${name}: ${policy} ...`);
      const result = new Simulation(workload.fleet, workload.jobs, { ...base, policy }).run();
      rows.push(figures(workload.fleet, result));
      process.stderr.write(` ${fmtMs(result.wallMs)} (${result.events} events, ${result.passes} passes)\n`);
    }
    out.push('', header(workload, base), '', summaryTable(rows), '', waitsTable(rows), name === '512x8' ? goals(rows) : '');
  }
  out.push('', `total run time: ${fmtMs(performance.now() - started)}`, '');
  process.stdout.write(out.join('\n'));
}

main().catch((err: unknown) => {
  if (err instanceof UsageError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
