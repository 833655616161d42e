// Every process one run of a job's command started, wherever it went: its own process group, a
// new session (setsid, a daemonised data loader, a `torchrun` child), or under init once its
// parent died. Each run's child gets a mark in its environment (CAELUM_RUN_ID, random per run)
// that everything it starts inherits, and /proc/<pid>/environ shows it. Only a process of this
// user whose environment carries the mark counts as the run's: nothing else is ever signalled.
// A process that execs with a cleared environment escapes this; that would take a cgroup.
// Without /proc (not Linux) no process is found and nothing is signalled.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';

export const RUN_MARK = 'CAELUM_RUN_ID';

export function newRunId(): string {
  return randomBytes(12).toString('hex');
}

/** The run mark of a live process of this user, if it carries one (a zombie has no environment). */
export async function runMarkOf(pid: number): Promise<string | undefined> {
  try {
    if ((await stat(`/proc/${pid}`)).uid !== process.getuid?.()) return undefined;
    const environ = await readFile(`/proc/${pid}/environ`, 'latin1');
    const entry = environ.split('\0').find((kv) => kv.startsWith(`${RUN_MARK}=`));
    return entry?.slice(RUN_MARK.length + 1);
  } catch {
    return undefined; // gone meanwhile, or not ours to read
  }
}

/**
 * Where the pids of a run's processes can be: Linux hands out pids in order, wrapping at
 * pid_max, so every process forked after the run started has a pid after the last one handed out
 * before it (`/proc/sys/kernel/ns_last_pid`, of this pid namespace), until the counter comes
 * round to it again. Reading the environment of only those is what makes ending a short job cheap:
 * a scan of all of /proc costs milliseconds per job on a busy host. The window is trusted for
 * WINDOW_TRUST_MS only (coming round takes pid_max forks, 32768 by default), after which the
 * whole of /proc is read as before.
 */
export interface PidWindow {
  /** ns_last_pid read just before the run's first process was spawned. */
  afterPid: number;
  /** When it was read (performance.now()). */
  at: number;
}

const WINDOW_TRUST_MS = 5000;
const LAST_PID = '/proc/sys/kernel/ns_last_pid';

function lastPid(): number | undefined {
  try {
    const value = Number(readFileSync(LAST_PID, 'latin1'));
    return Number.isInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined; // not Linux, or hidden: the whole of /proc is read
  }
}

/** The window to pass to processesOfRun/endRun for a run about to be spawned. */
export function pidWindow(): PidWindow | undefined {
  const afterPid = lastPid();
  return afterPid === undefined ? undefined : { afterPid, at: performance.now() };
}

/** Whether a pid can belong to a run spawned in `window`; everything when it is no longer trusted. */
function inWindow(window: PidWindow | undefined, last: number | undefined): (pid: number) => boolean {
  if (!window || last === undefined || performance.now() - window.at > WINDOW_TRUST_MS) return () => true;
  const { afterPid } = window;
  // Not wrapped: (afterPid, last]. Wrapped: after afterPid, or up to last.
  return last >= afterPid ? (pid) => pid > afterPid && pid <= last : (pid) => pid > afterPid || pid <= last;
}

/** The pids of the live processes that carry this run's mark (only the window's, when given). */
export async function processesOfRun(runId: string, window?: PidWindow): Promise<number[]> {
  let entries: string[];
  const fits = inWindow(window, window ? lastPid() : undefined);
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => pid !== process.pid && fits(pid));
  const marks = await Promise.all(pids.map((pid) => runMarkOf(pid)));
  return pids.filter((_, i) => marks[i] === runId);
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // ESRCH: it ended meanwhile.
    }
  }
}

/**
 * SIGTERM every process of the run (each one as it is found, so a fork made meanwhile gets it
 * too), SIGKILL whatever is left after `graceMs`, and resolve once none is left: true, or false
 * when some outlived SIGKILL by five seconds (a process stuck in the kernel).
 */
export async function endRun(runId: string, graceMs: number, window?: PidWindow): Promise<boolean> {
  const killAt = performance.now() + graceMs;
  const giveUpAt = killAt + 5000;
  const termed = new Set<number>();
  for (;;) {
    const pids = await processesOfRun(runId, window);
    if (pids.length === 0) return true;
    const now = performance.now();
    if (now >= giveUpAt) return false;
    if (now >= killAt) signal(pids, 'SIGKILL');
    else {
      const fresh = pids.filter((p) => !termed.has(p));
      signal(fresh, 'SIGTERM');
      for (const p of fresh) termed.add(p);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
