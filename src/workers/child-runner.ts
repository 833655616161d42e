// Runs one job's command as a child process in a process group of its own, so that cancelling,
// a timeout or shutdown ends everything it started. Argument arrays only, never a shell.
// The promise settles only once no process of the run is left (neither of its group nor one that
// left the group but still carries the run's mark, see job-processes.ts), so the caller may lease
// the job's GPUs again the moment it settles.
import { existsSync } from 'node:fs';
import readline from 'node:readline';
import { execa } from 'execa';
import { endRun, newRunId, RUN_MARK } from './job-processes.js';
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
}

const STDERR_TAIL = 20;

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

export async function runChild(spec: RunSpec): Promise<RunOutcome> {
  const started = performance.now();
  const runId = spec.runId ?? newRunId();
  const [program, ...args] = [...PDEATHSIG_PREFIX, ...spec.argv];
  const child = execa(program!, args, {
    cwd: spec.cwd,
    env: { ...spec.env, [RUN_MARK]: runId },
    extendEnv: false,
    detached: true,
    stdin: 'ignore',
    buffer: false,
    reject: false,
  });
  const pid = child.pid;
  const stderrTail: string[] = [];
  let timedOut = false;
  let aborted = false;
  let ending: Promise<unknown> | undefined;
  // The group, and every process that left it (setsid, a daemon) but still carries the run's mark.
  const end = (graceMs = spec.graceMs) => {
    if (pid !== undefined) ending ??= Promise.all([endGroup(pid, graceMs), endRun(runId, graceMs)]);
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

  const stdoutDone = new Promise<void>((resolve) => {
    if (!child.stdout) return resolve();
    const rl = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => {
      const event = parseEventLine(line);
      if (event) spec.onEvent(event);
      else spec.onLog(line, 'stdout');
    });
    rl.on('close', resolve);
  });
  const stderrDone = new Promise<void>((resolve) => {
    if (!child.stderr) return resolve();
    const rl = readline.createInterface({ input: child.stderr, crlfDelay: Infinity });
    rl.on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > STDERR_TAIL) stderrTail.shift();
      spec.onLog(line, 'stderr');
    });
    rl.on('close', resolve);
  });

  const result = await child;
  clearTimeout(timer);
  spec.signal.removeEventListener('abort', onAbort);
  // The leader is gone; anything it left, in its group or not, goes too, before the GPUs are free again.
  if (pid !== undefined) {
    end();
    await ending;
  }
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
