// 8. What the service asks of Redis, measured on a redis-server of this benchmark's own through
//    MONITOR, which shows every command with where it came from: round trips (the commands the
//    clients send, an EVALSHA counted once) and commands (what Redis executes, those inside
//    BullMQ's Lua scripts too, which MONITOR marks `lua`). INFO's counters cannot tell the two
//    apart: total_commands_processed counts the commands of scripts as well.
//    - idle, one real process at a time (a worker host, the api, a scheduler), production timings;
//    - per training with the validation job it brings, at 2 and at 10 epochs: a base cost and a
//      cost per epoch (each epoch is a progress report and a log line);
//    - baseline, same server, same run: a bare BullMQ Queue.add and Worker with an empty
//      processor, per job and idle; and redis-benchmark's SET throughput of this same server,
//      what one primary can serve here;
//    - the sum for a fleet of 300 GPU hosts, each finishing a 50-epoch training every 10 minutes.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { PrivateRedis } from '../test/helpers/private-redis.js';
import { startService, type ServiceProcess } from '../test/helpers/service-process.js';
import { type BenchResult, BENCH_DIR, Cleanup, createSchema, DATABASE_URL, fmt, sleep, waitUntil } from './lib.js';

const TOKEN = 'operator-token-of-the-redis-ops-bench';
const FLEET_HOSTS = 300;
const FLEET_TRAININGS_PER_HOST_HOUR = 6;
const FLEET_EPOCHS = 50;

interface Counts {
  roundTrips: number;
  commands: number;
}

/** Counts every command Redis runs, by whether a client sent it or a script ran it. */
class CommandCounter {
  private client = 0;
  private script = 0;

  private constructor(private readonly monitor: Redis) {}

  static async start(url: string): Promise<CommandCounter> {
    const redis = new Redis(url, { maxRetriesPerRequest: 1 });
    const monitor = await redis.monitor();
    redis.disconnect();
    const counter = new CommandCounter(monitor);
    monitor.on('monitor', (_time: string, _args: string[], source: string) => {
      if (source === 'lua') counter.script++;
      else counter.client++;
    });
    return counter;
  }

  /** What ran while `body` ran. */
  async measure(body: () => Promise<void>): Promise<Counts & { seconds: number }> {
    const [client, script] = [this.client, this.script];
    const t0 = performance.now();
    await body();
    const seconds = (performance.now() - t0) / 1000;
    // MONITOR's lines trail the commands by a moment.
    await sleep(300);
    return { roundTrips: this.client - client, commands: this.client - client + this.script - script, seconds };
  }

  close(): void {
    this.monitor.disconnect();
  }
}

const perSecond = (c: Counts & { seconds: number }): Counts => ({ roundTrips: c.roundTrips / c.seconds, commands: c.commands / c.seconds });
const show = (c: Counts, digits = 1) => `${fmt(c.roundTrips, digits)} round trips (${fmt(c.commands, digits)} commands)`;

export async function redisOpsBench(budgetMs: number): Promise<BenchResult> {
  const idleSeconds = Math.max(5, Math.min(Number(process.env.BENCH_REDIS_IDLE_SECONDS || 20), Math.floor((budgetMs - 60_000) / 3000)));
  const trainings = Number(process.env.BENCH_REDIS_TRAININGS || 20);
  const cleanup = new Cleanup();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-bench-redis-ops-'));
  cleanup.add(async () => rmSync(dir, { recursive: true, force: true }));
  try {
    mkdirSync(path.join(dir, 'redis'));
    const server = await PrivateRedis.start(path.join(dir, 'redis'), { appendOnly: false });
    cleanup.add(() => server.kill9());
    const counter = await CommandCounter.start(server.url);
    cleanup.add(async () => counter.close());
    const measure = (body: () => Promise<void>) => counter.measure(body);
    const db = await createSchema('redisops');
    cleanup.add(() => db.drop());
    const env = {
      REDIS_URL: server.url,
      DATABASE_URL,
      CAELUM_DB_SCHEMA: db.schema,
      CAELUM_CONFIG: path.join(BENCH_DIR, 'redis-ops.config.mts'),
      CAELUM_DATA_DIR: dir,
      CAELUM_API_TOKEN: TOKEN,
      CAELUM_METRICS_PORT: '0',
      PORT: '0',
      LOG_LEVEL: 'info',
    };
    const start = async (argv: string[]): Promise<ServiceProcess> => {
      const s = await startService(argv, env, { timeoutMs: 60_000 });
      cleanup.add(() => s.stop());
      return s;
    };
    /** One process alone, idle: its rate once its start-up is over. */
    const idle = async (argv: string[]): Promise<Counts> => {
      const s = await start(argv);
      await sleep(3000);
      const rate = perSecond(await measure(() => sleep(idleSeconds * 1000)));
      await s.stop();
      return rate;
    };
    const workerIdle = await idle(['worker', '--host', 'bench-a']);
    const apiIdle = await idle(['api']);
    const schedulerIdle = await idle(['scheduler']);

    // Trainings through the api and two workers, the way production runs them.
    const api = await start(['api']);
    await start(['worker', '--host', 'bench-a']);
    await start(['worker', '--host', 'bench-b']);
    const call = async (method: string, url: string, body?: object) => {
      const res = await fetch(`${api.url}${url}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      return (await res.json()) as Record<string, any>;
    };
    await waitUntil('both workers', async () => (await call('GET', '/api/workers')).workers?.length === 2, 30_000, 200);
    const background = { roundTrips: apiIdle.roundTrips + 2 * workerIdle.roundTrips, commands: apiIdle.commands + 2 * workerIdle.commands };
    const run = async (epochs: number): Promise<Counts> => {
      const before = Number((await call('GET', '/api/checkpoints?model=ops&limit=1')).total);
      let seen = '';
      const c = await measure(async () => {
        for (let i = 0; i < trainings; i++) await call('POST', '/api/jobs/training', { model: 'ops', params: { epochs, epoch_ms: 20 } });
        await waitUntil(
          `${trainings} trainings of ${epochs} epochs and their validations`,
          async () => {
            const { checkpoints, total } = await call('GET', `/api/checkpoints?model=ops&limit=200`);
            const judged = (checkpoints as { status: string }[]).filter((x) => x.status !== 'registered' && x.status !== 'validating').length;
            const open = await Promise.all(['waiting', 'active', 'delayed', 'failed'].map(async (state) => Number((await call('GET', `/api/jobs?state=${state}`)).total)));
            const failed = open[3] ? ((await call('GET', '/api/jobs?state=failed&limit=1')).jobs as { id: string; failureReason?: string }[])[0] : undefined;
            seen = `${Number(total) - before} checkpoints, ${judged} judged; waiting/active/delayed/failed jobs ${open.join('/')}${failed ? `; ${failed.id} failed: ${failed.failureReason}` : ''}`;
            return Number(total) - before >= trainings && judged >= Number(total) && open.slice(0, 3).every((n) => n === 0);
          },
          180_000,
          200,
        ).catch((err: Error) => Promise.reject(new Error(`${err.message} (${seen})`)));
      });
      return {
        roundTrips: (c.roundTrips - background.roundTrips * c.seconds) / trainings,
        commands: (c.commands - background.commands * c.seconds) / trainings,
      };
    };
    const short = await run(2);
    const long = await run(10);
    const perEpoch = { roundTrips: (long.roundTrips - short.roundTrips) / 8, commands: (long.commands - short.commands) / 8 };
    const base = { roundTrips: short.roundTrips - 2 * perEpoch.roundTrips, commands: short.commands - 2 * perEpoch.commands };

    // Baseline: bare BullMQ on the same server, an empty processor.
    const rawJobs = 500;
    const connection = new Redis(server.url, { maxRetriesPerRequest: null });
    cleanup.add(async () => connection.disconnect());
    const queue = new Queue('raw', { connection, prefix: 'raw' });
    cleanup.add(() => queue.close());
    const rawIdleWorker = new Worker('raw', async () => {}, { connection: new Redis(server.url, { maxRetriesPerRequest: null }), prefix: 'raw', concurrency: 4 });
    cleanup.add(() => rawIdleWorker.close());
    await sleep(2000);
    const rawIdle = perSecond(await measure(() => sleep(Math.min(idleSeconds, 10) * 1000)));
    let done = 0;
    rawIdleWorker.on('completed', () => done++);
    const raw = await measure(async () => {
      await queue.addBulk(Array.from({ length: rawJobs }, (_, i) => ({ name: 'raw', data: { i } })));
      await waitUntil('the bare worker to finish', () => done >= rawJobs, 60_000);
    });
    const rawPerJob = { roundTrips: (raw.roundTrips - rawIdle.roundTrips * raw.seconds) / rawJobs, commands: (raw.commands - rawIdle.commands * raw.seconds) / rawJobs };

    // What one primary serves on this machine: redis-benchmark against the same server.
    const { stdout } = await promisify(execFile)('redis-benchmark', ['-p', String(server.port), '-t', 'set', '-n', '200000', '-c', '50', '-q']);
    const capacity = Number(/SET: ([\d.]+) requests per second/.exec(stdout)?.[1]);

    const fleetTrainingsPerSecond = (FLEET_HOSTS * FLEET_TRAININGS_PER_HOST_HOUR) / 3600;
    const perTraining = (c: 'roundTrips' | 'commands') => base[c] + FLEET_EPOCHS * perEpoch[c];
    const fleet = (c: 'roundTrips' | 'commands') => FLEET_HOSTS * workerIdle[c] + apiIdle[c] + schedulerIdle[c] + fleetTrainingsPerSecond * perTraining(c);
    const share = fleet('roundTrips') / capacity;
    return {
      rows: [
        {
          figure: '10. Redis per training (with its validation job)',
          ours: `${show(base, 0)} + ${show(perEpoch)} per epoch`,
          baseline: `bare BullMQ add + empty processor: ${show(rawPerJob)} per job`,
          ratio: `${fmt(base.roundTrips / rawPerJob.roundTrips, 1)}x (base, round trips)`,
          goal: 'measured, no goal',
        },
        {
          figure: '10. Redis per idle process, per second',
          ours: `worker host ${show(workerIdle, 2)}; api ${show(apiIdle, 2)}; scheduler ${show(schedulerIdle, 2)}`,
          baseline: `bare BullMQ Worker, one queue: ${show(rawIdle, 2)}`,
          ratio: `${fmt(workerIdle.roundTrips / rawIdle.roundTrips, 1)}x (worker host)`,
          goal: 'measured, no goal',
        },
        {
          figure: `10. ${FLEET_HOSTS} GPU hosts, ${FLEET_TRAININGS_PER_HOST_HOUR} trainings of ${FLEET_EPOCHS} epochs per host-hour`,
          ours: `${fmt(fleet('roundTrips'), 0)} round trips/s (${fmt(fleet('commands'), 0)} commands/s)`,
          baseline: `one redis-server here: ${fmt(capacity, 0)} SET/s (redis-benchmark, 50 clients)`,
          ratio: `${fmt(share * 100, 2)}% of it`,
          goal: `< 10% of one primary: ${share < 0.1 ? 'met' : 'MISSED'}`,
        },
      ],
      notes: [
        `redis-ops: a redis-server of its own; idle windows ${idleSeconds} s per process at production timings (heartbeat 5 s, stalled check 30 s); ${trainings} trainings at 2 and at 10 epochs through the api and two worker processes, the idle rate of the three processes subtracted; bare BullMQ: ${rawJobs} jobs, concurrency 4.`,
      ],
    };
  } finally {
    await cleanup.run();
  }
}
