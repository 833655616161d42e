// One long-lived child of a warm command (README, "Warm runners"): it takes one job at a time as
// a JSON line on standard input and ends each with a `done` event tagged with the job's id. It
// runs in a process group of its own with one run mark for its whole life, like a cold child, so
// ending it ends everything it started. A cancel, a timeout or a hand-back ends the process (its
// memory may hold the stopped job's state); so does a crash, which fails only the job it ran.
import { readFile } from 'node:fs/promises';
import { endGroupAndRun, eachLine, spawnGroup, STDERR_TAIL, type GroupChild, type RunOutcome } from './child-runner.js';
import { newRunId } from './job-processes.js';
import { parseWarmLine, type ProtocolEvent } from './protocol.js';

export interface WarmStart {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** Time between SIGTERM and SIGKILL when it must end. */
  graceMs: number;
  /** A line it wrote while running no job (its start-up, say). */
  onIdleLine(line: string, stream: 'stdout' | 'stderr'): void;
}

export interface WarmJob {
  id: string;
  payload: unknown;
  /** The per-job variables a cold child would get in its environment. */
  env: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  /** The grace when `signal` aborts, from its reason; undefined: the start's graceMs. */
  abortGraceMs?: (reason: unknown) => number | undefined;
  onEvent(event: ProtocolEvent): void;
  onLog(line: string, stream: 'stdout' | 'stderr'): void;
}

interface Current {
  job: WarmJob;
  stderrTail: string[];
  finish(how: { ok: true } | { ok: false; error: string } | { ended: 'timeout' | 'abort' | 'exit' }): void;
}

export class WarmProcess {
  readonly runId = newRunId();
  private readonly group: GroupChild;
  private current: Current | undefined;
  private ending: Promise<unknown> | undefined;
  private exited = false;
  /** Jobs it has been handed, finished or not. */
  jobsRun = 0;
  /** When it last finished a job (or started), for the idle limit. */
  idleSince = Date.now();
  /** The streams are read to their end: nothing it wrote is lost. */
  private readonly drained: Promise<void>;

  constructor(private readonly start: WarmStart) {
    this.group = spawnGroup(start.argv, start.cwd, { ...start.env, CAELUM_RUNNER: 'warm' }, this.runId, 'pipe');
    const { child } = this.group;
    // A write to a process that died is answered by its exit, not by an error of our own.
    child.stdin?.on('error', () => {});
    void this.group.exit.then(async () => {
      this.exited = true;
      // What it started goes with it, as with a cold child's leader.
      await this.end(start.graceMs);
      // A `done` it wrote just before exiting still counts: read its output to the end first.
      await this.drained;
      this.current?.finish({ ended: 'exit' });
    });
    const stdout = eachLine(child.stdout, (line) => this.onStdout(line));
    const stderr = eachLine(child.stderr, (line) => {
      const cur = this.current;
      if (!cur) return start.onIdleLine(line, 'stderr');
      cur.stderrTail.push(line);
      if (cur.stderrTail.length > STDERR_TAIL) cur.stderrTail.shift();
      cur.job.onLog(line, 'stderr');
    });
    this.drained = Promise.all([stdout, stderr]).then(() => undefined);
  }

  get pid(): number | undefined {
    return this.group.pid;
  }

  /** Whether it can take another job: alive, not being ended, running none. */
  get usable(): boolean {
    return !this.exited && this.ending === undefined && this.current === undefined && this.group.pid !== undefined;
  }

  /** Resident memory of the process in MiB (its own, not its children's); undefined once gone. */
  async rssMiB(): Promise<number | undefined> {
    if (this.group.pid === undefined) return undefined;
    try {
      const status = await readFile(`/proc/${this.group.pid}/status`, 'latin1');
      const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
      return kib === undefined ? undefined : Number(kib) / 1024;
    } catch {
      return undefined;
    }
  }

  /** Runs one job in it; the outcome reads as a cold child's would. */
  run(job: WarmJob): Promise<RunOutcome> {
    if (!this.usable) throw new Error('warm process is not usable');
    const started = performance.now();
    this.jobsRun++;
    return new Promise<RunOutcome>((resolve) => {
      let timedOut = false;
      let aborted = false;
      const settle = async (how: Parameters<Current['finish']>[0]): Promise<void> => {
        clearTimeout(timer);
        job.signal.removeEventListener('abort', onAbort);
        const cur = this.current!;
        let exit: { exitCode: number | undefined; signal: string | undefined } = { exitCode: 0, signal: undefined };
        let failure: string | undefined;
        if ('ended' in how) {
          // Its process (and all it started) is gone before the job's slot is free again.
          await this.end(how.ended === 'abort' ? (job.abortGraceMs?.(job.signal.reason) ?? this.start.graceMs) : this.start.graceMs);
          await this.drained;
          const e = await this.group.exit;
          exit = how.ended === 'exit' ? { exitCode: e.exitCode, signal: e.signal } : { exitCode: undefined, signal: e.signal };
        } else if (!how.ok) {
          failure = how.error;
          exit = { exitCode: 1, signal: undefined };
        }
        this.current = undefined;
        this.idleSince = Date.now();
        resolve({
          exitCode: exit.exitCode,
          signal: exit.signal,
          timedOut,
          aborted,
          stderrTail: cur.stderrTail,
          durationMs: Math.round(performance.now() - started),
          pid: this.group.pid,
          ...(failure !== undefined ? { failure } : {}),
        });
      };
      let finished = false;
      const finish = (how: Parameters<Current['finish']>[0]) => {
        if (finished) return;
        finished = true;
        void settle(how);
      };
      this.current = { job, stderrTail: [], finish };
      const timer = setTimeout(() => {
        timedOut = true;
        finish({ ended: 'timeout' });
      }, job.timeoutMs);
      const onAbort = () => {
        aborted = true;
        finish({ ended: 'abort' });
      };
      if (job.signal.aborted) return onAbort();
      job.signal.addEventListener('abort', onAbort, { once: true });
      // The payload is data for the program, one line of JSON; never arguments or flags.
      this.group.child.stdin?.write(`${JSON.stringify({ job: job.id, payload: job.payload, env: job.env })}\n`);
    });
  }

  private onStdout(line: string): void {
    const cur = this.current;
    if (!cur) return this.start.onIdleLine(line, 'stdout');
    const tagged = parseWarmLine(line);
    if (tagged === undefined) return cur.job.onLog(line, 'stdout');
    if (tagged.job !== undefined && tagged.job !== cur.job.id) {
      cur.job.onLog(`[dropped an event of another job (${tagged.job}): ${line.slice(0, 200)}]`, 'stdout');
      return;
    }
    if (tagged.kind === 'done') {
      // Standard error is another pipe: what the job wrote there before `done` may be read just
      // after it. Two turns of the event loop let it land in the job's log, not the worker's.
      const how = tagged.ok ? ({ ok: true } as const) : ({ ok: false, error: tagged.error } as const);
      setImmediate(() => setImmediate(() => cur.finish(how)));
    }
    else cur.job.onEvent(tagged.event);
  }

  /**
   * Asks it to exit (end of standard input) and ends its group after `graceMs` if it has not;
   * resolves once none of its processes is left. Idempotent.
   */
  close(graceMs = this.start.graceMs): Promise<unknown> {
    if (this.ending) return this.ending;
    this.group.child.stdin?.end();
    this.ending = (async () => {
      if (!this.exited) {
        await Promise.race([this.group.exit, new Promise((r) => setTimeout(r, graceMs).unref())]);
      }
      await endGroupAndRun(this.group, graceMs);
      await this.drained;
    })();
    return this.ending;
  }

  /** Ends its group now (SIGTERM, SIGKILL after `graceMs`). */
  private end(graceMs: number): Promise<unknown> {
    this.ending ??= endGroupAndRun(this.group, graceMs).then(() => this.group.exit);
    return this.ending;
  }
}
