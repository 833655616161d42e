// Runs one job's command as a child process in a process group of its own, so that cancelling,
// a timeout or shutdown ends everything it started. Argument arrays only, never a shell.
// The promise settles only once no process of the run is left (neither of its group nor one that
// left the group but still carries the run's mark, see job-processes.ts), so the caller may lease
// the job's GPUs again the moment it settles.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { endRun, newRunId, pidWindow, RUN_MARK, type PidWindow } from './job-processes.js';
import { parseEventLine, type ProtocolEvent } from './protocol.js';

export interface RunSpec {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  /** Marks every process of this run (job-processes.ts); a fresh one when not given. */
  runId?: string;
  timeoutMs: number;
  /** Time between SIGTERM and SIGKILL when the group must end. */
  graceMs: number;
  /**
   * The grace when `signal` aborts, from its reason (a job stopped to be resumed gets its
   * command's stopGraceSeconds to write a checkpoint); unset or undefined: graceMs.
   */
  abortGraceMs?: (reason: unknown) => number | undefined;
  signal: AbortSignal;
  onEvent(event: ProtocolEvent): void;
  onLog(line: string, stream: 'stdout' | 'stderr'): void;
  onSpawn?(pid: number): void;
}

export interface RunOutcome {
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  aborted: boolean;
  /** The last lines of standard error, for the failure reason. */
  stderrTail: string[];
  durationMs: number;
  pid: number | undefined;
  /** A warm child's own reason for failing a job (its `done` with ok false); the process lives on. */
  failure?: string;
}

export const STDERR_TAIL = 20;

/**
 * On Linux, `setpriv --pdeathsig KILL` makes the child die with the worker even on `kill -9`.
 * What it started outlives it; the orphan sweep at the next start ends that (src/workers/orphans.ts).
 */
export const PDEATHSIG_PREFIX: string[] =
  process.platform === 'linux' && existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] : [];

export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** SIGTERM the group, SIGKILL it after the grace period, and resolve once it is gone. */
export async function endGroup(pgid: number, graceMs: number): Promise<boolean> {
  if (!groupAlive(pgid)) return true;
  signalGroup(pgid, 'SIGTERM');
  const killAt = Date.now() + graceMs;
  const giveUpAt = killAt + 5000;
  let killed = false;
  while (groupAlive(pgid)) {
    if (!killed && Date.now() >= killAt) {
      signalGroup(pgid, 'SIGKILL');
      killed = true;
    }
    // Zombies that nobody reaps keep a group "alive" for ever; stop waiting eventually.
    if (Date.now() >= giveUpAt) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** A child started in a process group of its own, marked with its run id. */
export interface GroupChild {
  child: ChildProcess;
  pid: number | undefined;
  runId: string;
  /** Where its processes' pids can be (job-processes.ts), for a cheap search at its end. */
  window: PidWindow | undefined;
  /** Resolves with how the leader ended; never rejects (a failed spawn is exit code 127). */
  exit: Promise<{ exitCode: number | undefined; signal: string | undefined; error?: Error }>;
}

/**
 * Spawns `argv` (an argument array, never a shell) as the leader of a new process group under
 * the death-signal prefix, with exactly `env` and the run mark. Plain child_process.spawn: the
 * layers execa adds (its promise, buffering, its own signal handling) cost about a millisecond
 * a job and gave nothing this runner does not do itself (bench/diagnose.ts measures both).
 */
export function spawnGroup(argv: string[], cwd: string, env: Record<string, string>, runId: string, stdin: 'ignore' | 'pipe'): GroupChild {
  const [program, ...args] = [...PDEATHSIG_PREFIX, ...argv];
  const window = pidWindow();
  const child = spawn(program!, args, {
    cwd,
    env: { ...env, [RUN_MARK]: runId },
    detached: true,
    stdio: [stdin, 'pipe', 'pipe'],
  });
  const exit = new Promise<{ exitCode: number | undefined; signal: string | undefined; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ exitCode: 127, signal: undefined, error }));
    child.once('exit', (code, signal) => resolve({ exitCode: code ?? undefined, signal: signal ?? undefined }));
  });
  return { child, pid: child.pid, runId, window, exit };
}

/** Calls `onLine` for each line of a stream; resolves when it closes. */
export function eachLine(stream: Readable | null, onLine: (line: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!stream) return resolve();
    const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', onLine);
    rl.on('close', resolve);
  });
}

/** Ends the group and every process that left it but carries the run's mark; resolves once none is left. */
export function endGroupAndRun(g: GroupChild, graceMs: number): Promise<unknown> {
  if (g.pid === undefined) return Promise.resolve();
  return Promise.all([endGroup(g.pid, graceMs), endRun(g.runId, graceMs, g.window)]);
}

export async function runChild(spec: RunSpec): Promise<RunOutcome> {
  const started = performance.now();
  const g = spawnGroup(spec.argv, spec.cwd, spec.env, spec.runId ?? newRunId(), 'ignore');
  const { child, pid } = g;
  const stderrTail: string[] = [];
  let timedOut = false;
  let aborted = false;
  let ending: Promise<unknown> | undefined;
  // The group, and every process that left it (setsid, a daemon) but still carries the run's mark.
  const end = (graceMs = spec.graceMs) => {
    ending ??= endGroupAndRun(g, graceMs);
  };

  if (pid !== undefined) spec.onSpawn?.(pid);
  // When the leader exits, end the rest of its group at once: a grandchild holding stdout open
  // would otherwise keep the job "running" until its timeout.
  child.once('exit', () => end());
  const timer = setTimeout(() => {
    timedOut = true;
    end();
  }, spec.timeoutMs);
  const onAbort = () => {
    aborted = true;
    end(spec.abortGraceMs?.(spec.signal.reason));
  };
  if (spec.signal.aborted) onAbort();
  else spec.signal.addEventListener('abort', onAbort, { once: true });

  const stdoutDone = eachLine(child.stdout, (line) => {
    const event = parseEventLine(line);
    if (event) spec.onEvent(event);
    else spec.onLog(line, 'stdout');
  });
  const stderrDone = eachLine(child.stderr, (line) => {
    stderrTail.push(line);
    if (stderrTail.length > STDERR_TAIL) stderrTail.shift();
    spec.onLog(line, 'stderr');
  });

  const result = await g.exit;
  if (result.error) {
    stderrTail.push(`could not start ${spec.argv[0]}: ${result.error.message}`);
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
  clearTimeout(timer);
  spec.signal.removeEventListener('abort', onAbort);
  // The leader is gone; anything it left, in its group or not, goes too, before the GPUs are free again.
  end();
  await ending;
  await Promise.all([stdoutDone, stderrDone]);
  return {
    exitCode: result.exitCode,
    signal: result.signal,
    timedOut,
    aborted,
    stderrTail,
    durationMs: Math.round(performance.now() - started),
    pid,
  };
}
