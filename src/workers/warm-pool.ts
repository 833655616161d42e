// The warm processes of one host worker (README, "Warm runners"): idle ones wait for the next job
// of the same command and environment; each runs one job at a time, so there are never more busy
// ones than the queues' slots. A process is replaced after `maxJobs` jobs, above `maxRssMiB`,
// after `idleSeconds` idle, and once it ended (a cancel, a timeout, a crash).
import type { RunnerConfig } from '../config/fleet-schema.js';
import type { Logger } from '../logger.js';
import type { RunOutcome } from './child-runner.js';
import { WarmProcess, type WarmJob } from './warm-process.js';

type WarmRunner = Extract<RunnerConfig, { mode: 'warm' }>;

export interface WarmCommand {
  argv: string[];
  cwd: string;
  runner: WarmRunner;
  /** The environment the process starts with: the same for every job it will take. */
  env: Record<string, string>;
}

export interface WarmPoolOptions {
  graceMs: number;
  log: Logger;
  /** A process started (record it for the orphan sweep) and ended (forget it). */
  onStart(proc: WarmProcess): void;
  onEnd(proc: WarmProcess): void;
}

interface Idle {
  proc: WarmProcess;
  timer: NodeJS.Timeout;
}

export class WarmPool {
  private readonly idle = new Map<string, Idle[]>();
  private readonly closing = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly opts: WarmPoolOptions) {}

  /** Runs a job in an idle process of the command (started when none is idle). */
  async run(command: WarmCommand, job: WarmJob, onRun: (runId: string) => void, onRunEnd: (runId: string) => void): Promise<RunOutcome> {
    const key = JSON.stringify([command.argv, command.cwd, command.env]);
    const proc = this.take(key) ?? this.spawn(command);
    // Its run mark is the job's while it runs the job (the GPU guard counts its processes as the job's).
    onRun(proc.runId);
    try {
      return await proc.run(job);
    } finally {
      onRunEnd(proc.runId);
      await this.putBack(key, proc, command.runner);
    }
  }

  /** Ends every process (idle ones; busy ones are ended by their jobs' stop first). Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const list of this.idle.values()) for (const { proc, timer } of list.splice(0)) {
      clearTimeout(timer);
      this.retire(proc);
    }
    while (this.closing.size > 0) await Promise.all([...this.closing]);
  }

  /**
   * The run marks of its idle processes. An idle warm process of a GPU command keeps its GPU
   * memory; the GPU guard counts it as ours, so its GPU stays leasable (README, "Warm runners").
   */
  idleRunIds(): string[] {
    return [...this.idle.values()].flatMap((list) => list.map((i) => i.proc.runId));
  }

  /** How many processes wait for a job, for the tests and the status. */
  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  private take(key: string): WarmProcess | undefined {
    const list = this.idle.get(key);
    while (list?.length) {
      const { proc, timer } = list.pop()!;
      clearTimeout(timer);
      if (proc.usable) return proc;
      this.retire(proc);
    }
    return undefined;
  }

  private spawn(command: WarmCommand): WarmProcess {
    const proc = new WarmProcess({
      argv: command.argv,
      cwd: command.cwd,
      env: command.env,
      graceMs: this.opts.graceMs,
      onIdleLine: (line, stream) => this.opts.log.info({ pid: proc.pid, stream }, `warm process: ${line.slice(0, 2000)}`),
    });
    this.opts.onStart(proc);
    return proc;
  }

  private async putBack(key: string, proc: WarmProcess, runner: WarmRunner): Promise<void> {
    if (this.closed || !proc.usable) return this.retire(proc);
    if (proc.jobsRun >= runner.maxJobs) {
      this.opts.log.debug({ pid: proc.pid, jobs: proc.jobsRun }, 'replacing a warm process: it ran its maxJobs');
      return this.retire(proc);
    }
    const rss = await proc.rssMiB();
    if (rss !== undefined && rss > runner.maxRssMiB) {
      this.opts.log.info({ pid: proc.pid, rssMiB: Math.round(rss), maxRssMiB: runner.maxRssMiB }, 'replacing a warm process: above its maxRssMiB');
      return this.retire(proc);
    }
    // A close that came while the memory was read retires it instead.
    if (this.closed || !proc.usable) return this.retire(proc);
    const timer = setTimeout(() => {
      const list = this.idle.get(key) ?? [];
      const at = list.findIndex((i) => i.proc === proc);
      if (at >= 0) list.splice(at, 1);
      this.retire(proc);
    }, runner.idleSeconds * 1000);
    timer.unref();
    const list = this.idle.get(key) ?? [];
    list.push({ proc, timer });
    this.idle.set(key, list);
  }

  /** Ends a process in the background; close() waits for every such end. */
  private retire(proc: WarmProcess): void {
    const done = proc
      .close()
      .catch((err: unknown) => this.opts.log.warn({ err, pid: proc.pid }, 'could not end a warm process'))
      .finally(() => {
        this.closing.delete(done);
        this.opts.onEnd(proc);
      });
    this.closing.add(done);
  }
}
