// Shared helpers of the benchmarks: the real servers, own BullMQ prefixes and Postgres schemas
// (removed after), percentiles, autocannon in a child process, the machine description.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createLogger } from '../src/logger.js';
import { migrate } from '../src/registry/migrate.js';
import { createPool } from '../src/registry/pool.js';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
export const BENCH_DIR = import.meta.dirname;
export const REPO_ROOT = path.resolve(BENCH_DIR, '..');
export const logger = createLogger(process.env.LOG_LEVEL || 'error', { pretty: false });

export const uniqueName = (label: string) => `bench_${label.replace(/[^a-z0-9]/gi, '').toLowerCase()}_${randomBytes(4).toString('hex')}`;
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Wall clock with sub-millisecond precision, comparable across processes of this machine. */
export const preciseNow = () => performance.timeOrigin + performance.now();

export { deletePrefix } from '../test/helpers/redis.js';

/** Bytes Redis attributes to the keys of a prefix (MEMORY USAGE of each, SAMPLES 0). */
export async function prefixMemory(prefix: string): Promise<{ keys: number; bytes: number }> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    let keys = 0;
    let bytes = 0;
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      const pipe = redis.pipeline();
      for (const k of batch) pipe.memory('USAGE', k, 'SAMPLES', 0);
      for (const [, v] of (await pipe.exec()) ?? []) bytes += Number(v ?? 0);
      keys += batch.length;
    } while (cursor !== '0');
    return { keys, bytes };
  } finally {
    redis.disconnect();
  }
}

export async function redisUsedMemory(): Promise<number> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    const info = await redis.info('memory');
    return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
  } finally {
    redis.disconnect();
  }
}

export interface BenchSchema {
  schema: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createSchema(label: string): Promise<BenchSchema> {
  const schema = uniqueName(label);
  const pool = createPool(DATABASE_URL, logger, { schema, max: 4 });
  await migrate(pool, logger, schema);
  let dropped = false;
  return {
    schema,
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end().catch(() => {});
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      try {
        await admin.query(`drop schema if exists ${admin.escapeIdentifier(schema)} cascade`);
      } finally {
        await admin.end();
      }
    },
  };
}

/** Runs cleanups in reverse order of registration, whatever fails. */
export class Cleanup {
  private readonly steps: (() => Promise<unknown>)[] = [];
  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      await step().catch((err: unknown) => console.error(`  cleanup step failed: ${String(err)}`));
    }
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const fmt = (n: number, digits = 1) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 }) : String(n);

export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

export interface AutocannonSummary {
  requestsPerSec: number;
  p50: number;
  p99: number;
  total: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  durationSec: number;
}

/** autocannon in a child process, so the load generator does not share the server's event loop. */
/** Whether processes can be pinned to cores here (taskset, and at least two cores). */
export const CAN_PIN = existsSync('/usr/bin/taskset') && os.cpus().length >= 2;

/** Pins a process (this one by default) to the given cores; returns the cores it had. */
export async function pinTo(cores: string, pid = process.pid): Promise<string> {
  const { stdout } = await promisify(execFile)('taskset', ['-pc', String(pid)]);
  const before = /:\s*(\S+)\s*$/.exec(stdout.trim())?.[1] ?? `0-${os.cpus().length - 1}`;
  await promisify(execFile)('taskset', ['-pc', cores, String(pid)]);
  return before;
}

/** autocannon in a process of its own; `cores`: pinned to them (taskset -c). */
export function runAutocannon(opts: Record<string, unknown>, timeoutMs: number, cores?: string): Promise<AutocannonSummary> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, path.join(BENCH_DIR, 'autocannon-child.mjs'), JSON.stringify(opts)];
    if (cores) argv.unshift('taskset', '-c', cores);
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`autocannon exited ${code}: ${err.slice(-500)}`));
      try {
        resolve(JSON.parse(out) as AutocannonSummary);
      } catch (e) {
        reject(new Error(`autocannon output unreadable: ${String(e)} ${out.slice(0, 200)}`));
      }
    });
  });
}

export async function machine(): Promise<string> {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  let redisVersion = 'unknown';
  try {
    redisVersion = (await promisify(execFile)('redis-server', ['--version'])).stdout.trim();
  } catch {
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    redisVersion = `server ${/redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?'}`;
    redis.disconnect();
  }
  let pgVersion = 'unknown';
  try {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    pgVersion = (await c.query<{ server_version: string }>('show server_version')).rows[0]!.server_version;
    await c.end();
  } catch {
    /* reported as unknown */
  }
  return [
    `nproc: ${os.availableParallelism()}`,
    `CPU: ${cpu}`,
    `memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `node: ${process.version}`,
    `redis-server: ${redisVersion}`,
    `postgres: ${pgVersion}`,
    `os: ${os.type()} ${os.release()}`,
  ].join('\n');
}

/** One row of the final table. */
export interface Row {
  figure: string;
  ours: string;
  baseline: string;
  ratio: string;
  goal: string;
}

export interface BenchResult {
  rows: Row[];
  notes: string[];
}

export type Bench = (budgetMs: number) => Promise<BenchResult>;
