// 7. memory, as deployed: the peak RSS of a `caelum-scheduler worker` process (the real command,
// its fleet file, metrics server and all) that runs N no-op jobs at concurrency 16. Before (the
// baseline commit: its sources through tsx, the fleet file too) against after (dist/, the fleet
// file as TypeScript through esbuild, and as .mjs through nothing). The variants alternate round
// by round. The worker's peak is VmHWM of /proc/<pid>/status, read once the jobs are done, beside
// VmRSS then; each variant's median over the rounds is compared.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueSet } from '../src/queues/queue-set.js';
import { ensureFreshBuild } from '../test/helpers/fresh-build.js';
import { BASELINE_REF, baselineTree, builtTree, projectWith, type Tree } from './baseline-tree.js';
import { jobData, NOOP_COMMAND } from './dispatch.js';
import { cpuFleet, cpuFleetInput } from './fleets.js';
import { type BenchResult, Cleanup, createSchema, DATABASE_URL, deletePrefix, fmt, logger, percentile, REDIS_URL, REPO_ROOT, sleep, uniqueName } from './lib.js';

const CONCURRENCY = 16;

interface Variant {
  name: string;
  tree: Tree;
  /** How the fleet file is written: TypeScript through the package's defineConfig, or plain ESM. */
  file: 'ts' | 'mjs';
}

function writeFleetFile(dir: string, file: Variant['file']): string {
  const input = JSON.stringify(cpuFleetInput(CONCURRENCY, NOOP_COMMAND), null, 2);
  const target = path.join(dir, `workers.config.${file}`);
  writeFileSync(
    target,
    file === 'ts' ? `import { defineConfig } from 'caelum-scheduler/config';\n\nexport default defineConfig(${input});\n` : `export default ${input};\n`,
  );
  return target;
}

/** Peak (VmHWM) and current (VmRSS) resident set of a process, in MiB. */
function memoryOf(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  return { peak: field('VmHWM'), now: field('VmRSS') };
}

interface Outcome {
  /** VmRSS once the worker is up, before any job. */
  idle: number;
  peak: number;
  now: number;
  completed: number;
}

async function runOne(variant: Variant, n: number, schema: string, deadline: number): Promise<Outcome> {
  const prefix = uniqueName(`rss${variant.name}`);
  const cleanup = new Cleanup();
  cleanup.add(() => deletePrefix(prefix));
  const project = projectWith(variant.tree);
  cleanup.add(async () => project.close());
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'caelum-bench-rss-'));
  cleanup.add(async () => rmSync(dataDir, { recursive: true, force: true }));
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  cleanup.add(async () => redis.disconnect());
  try {
    const queues = new QueueSet(cpuFleet(CONCURRENCY, NOOP_COMMAND), redis, prefix, logger);
    cleanup.add(() => queues.close());
    const queue = queues.get('backtest')!.queue;
    const child = spawn(process.execPath, [variant.tree.bin, 'worker', '--host', 'bench-host'], {
      cwd: project.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        REDIS_URL,
        DATABASE_URL,
        CAELUM_DB_SCHEMA: schema,
        CAELUM_PREFIX: prefix,
        CAELUM_CONFIG: writeFleetFile(project.dir, variant.file),
        CAELUM_DATA_DIR: dataDir,
        CAELUM_METRICS_PORT: '0',
        LOG_LEVEL: 'info',
      },
    });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    cleanup.add(async () => {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    await new Promise<void>((resolve, reject) => {
      readline.createInterface({ input: child.stdout }).on('line', (line) => line.includes('caelum-scheduler is up') && resolve());
      void exited.then(() => reject(new Error(`worker (${variant.name}) exited before it was up: ${stderr}`)));
    });
    const idle = memoryOf(child.pid!).now;
    for (let i = 0; i < n; i += 500) {
      const batch = Array.from({ length: Math.min(500, n - i) }, () => ({ name: 'backtest', data: jobData(), opts: { jobId: `backtest.${randomUUID()}` } as JobsOptions }));
      await queue.addBulk(batch);
    }
    let done = 0;
    while (done < n && Date.now() < deadline) {
      await sleep(100);
      const [completed, failed] = await Promise.all([queue.getCompletedCount(), queue.getFailedCount()]);
      done = completed + failed;
    }
    return { idle, ...memoryOf(child.pid!), completed: done };
  } finally {
    await cleanup.run();
  }
}

export async function workerRssBench(budgetMs: number, n = Number(process.env.BENCH_DISPATCH_JOBS || 1000)): Promise<BenchResult> {
  const start = Date.now();
  const rounds = Number(process.env.BENCH_RSS_ROUNDS || 3);
  ensureFreshBuild(REPO_ROOT);
  const db = await createSchema('workerrss');
  const before = baselineTree();
  try {
    const variants: Variant[] = [
      { name: 'before', tree: before, file: 'ts' },
      { name: 'after', tree: builtTree, file: 'ts' },
      { name: 'aftermjs', tree: builtTree, file: 'mjs' },
    ];
    const results = new Map<string, Outcome[]>(variants.map((v) => [v.name, []]));
    const partial: string[] = [];
    const runs = rounds * variants.length;
    for (let r = 0; r < rounds; r++) {
      // Each round in another order, so that no variant always follows the same one.
      const order = r % 2 ? [...variants].reverse() : variants;
      for (const v of order) {
        const share = (budgetMs - (Date.now() - start)) / (runs - (r * variants.length + order.indexOf(v)));
        const out = await runOne(v, n, db.schema, Date.now() + share - 5_000);
        results.get(v.name)!.push(out);
        if (out.completed < n) partial.push(`${v.name} round ${r + 1}: ${out.completed}/${n} jobs in budget`);
      }
    }
    const median = (name: string, key: 'idle' | 'peak' | 'now') => percentile(results.get(name)!.map((r) => r[key]), 50);
    const byRound = (name: string) => results.get(name)!.map((r) => `${fmt(r.idle)}/${fmt(r.peak)}/${fmt(r.now)}`).join(', ');
    const others = (name: string) => `idle ${fmt(median(name, 'idle'))} MiB, at the end ${fmt(median(name, 'now'))} MiB`;
    const base = median('before', 'peak');
    const row = (name: string, how: string) => {
      const ours = median(name, 'peak');
      const cut = 1 - ours / base;
      return {
        figure: `7. memory, as deployed: peak RSS of \`caelum-scheduler worker\` after ${n} jobs, ${how}`,
        ours: `${fmt(ours)} MiB median peak; ${others(name)} (idle/peak/end by round: ${byRound(name)})`,
        baseline: `${fmt(base)} MiB; ${others('before')}, ${BASELINE_REF} through tsx, .ts fleet file (${byRound('before')})`,
        ratio: `${fmt(ours / base, 2)}x`,
        goal: `>= 25% lower: ${cut >= 0.25 ? 'met' : 'MISSED'} (${fmt(cut * 100)}% lower)`,
      };
    };
    return {
      rows: [row('after', 'dist/, .ts fleet file (esbuild)'), row('aftermjs', 'dist/, .mjs fleet file')],
      notes: [
        `worker memory as deployed: the real \`worker --host\` process with its fleet file in a project folder of its own (caelum-scheduler linked in), ${n} no-op backtests (${JSON.stringify(NOOP_COMMAND)}) at concurrency ${CONCURRENCY}, ` +
          `${rounds} round(s) in alternating order, the median of each variant compared; idle = VmRSS once the worker is up, before the jobs; peak = VmHWM once they are done, end = VmRSS then.` +
          (partial.length ? ` Partial runs: ${partial.join('; ')}.` : ''),
      ],
    };
  } finally {
    before.close();
    await db.drop();
  }
}
