// Every process one run of a job's command started, wherever it went: its own process group, a
// new session (setsid, a daemonised data loader, a `torchrun` child), or under init once its
// parent died. Each run's child gets a mark in its environment (CAELUM_RUN_ID, random per run)
// that everything it starts inherits, and /proc/<pid>/environ shows it. Only a process of this
// user whose environment carries the mark counts as the run's: nothing else is ever signalled.
// A process that execs with a cleared environment escapes this; that would take a cgroup.
// Without /proc (not Linux) no process is found and nothing is signalled.
import { randomBytes } from 'node:crypto';
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

/** The pids of the live processes that carry this run's mark. */
export async function processesOfRun(runId: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => pid !== process.pid);
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
export async function endRun(runId: string, graceMs: number): Promise<boolean> {
  const killAt = performance.now() + graceMs;
  const giveUpAt = killAt + 5000;
  const termed = new Set<number>();
  for (;;) {
    const pids = await processesOfRun(runId);
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
