// A worker process of the dispatch, start-latency, memory and warm-runner benchmarks, started by
// the parent with one JSON argument. Modes:
//   ours       our host worker (startWorkers: capacity leases, heartbeats, progress plumbing,
//              the fleet's backtest command run cold, a child per job, or warm, as `runner` says)
//   raw        a plain BullMQ Worker with a no-op processor and the same concurrency
//   raw-spawn  a plain BullMQ Worker whose processor spawns the same command (child_process.spawn)
// It prints {"ready":true} once it consumes, and on "stop" (stdin) or SIGTERM closes and prints
// {"maxRssKiB": …}, the peak resident set of this process.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { DEFAULT_HOST_WORKER_OPTIONS } from '../src/workers/host-worker.js';
import { startTestWorkers } from '../test/helpers/workers.js';
import { createPool } from '../src/registry/pool.js';
import { type BenchRunner, cpuFleet } from './fleets.js';
import { DATABASE_URL, logger, REDIS_URL, REPO_ROOT } from './lib.js';

interface Args {
  mode: 'ours' | 'raw' | 'raw-spawn';
  prefix: string;
  /** Queue of the raw modes (ours serves the fleet's queues). */
  queue: string;
  concurrency: number;
  command: string[];
  /** Ours only: the backtest command's runner (cold when unset). */
  runner?: BenchRunner;
  schema: string;
}

const args = JSON.parse(process.argv[2]!) as Args;
const say = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
let close: () => Promise<void>;

if (args.mode === 'ours') {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'caelum-bench-'));
  const pool = createPool(DATABASE_URL, logger, { schema: args.schema, max: 2 });
  const running = await startTestWorkers(cpuFleet(args.concurrency, args.command, {}, args.runner), args.prefix, pool, ['bench-host'], DEFAULT_HOST_WORKER_OPTIONS, undefined, {
    dataDir,
    version: 'bench',
  });
  close = async () => {
    await running.close();
    await pool.end();
    rmSync(dataDir, { recursive: true, force: true });
  };
} else {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const spawnCommand = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const [program, ...rest] = args.command;
      const child = spawn(program!, rest, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let result: unknown = null;
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          const e = JSON.parse(line) as { event?: string; metrics?: unknown };
          if (e.event === 'result') result = { metrics: e.metrics };
        } catch {
          /* a log line */
        }
      });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(result) : reject(new Error(`exit ${code}`))));
    });
  const worker = new Worker(args.queue, args.mode === 'raw' ? async () => null : spawnCommand, {
    connection,
    prefix: args.prefix,
    concurrency: args.concurrency,
  });
  worker.on('error', (err) => logger.warn({ err }, 'raw worker error'));
  await worker.waitUntilReady();
  close = async () => {
    await worker.close();
    connection.disconnect();
  };
}

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await close();
  say({ maxRssKiB: process.resourceUsage().maxRSS });
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
readline.createInterface({ input: process.stdin }).on('line', (l) => l.trim() === 'stop' && void stop());
say({ ready: true });
