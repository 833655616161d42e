// A lock file holding the pid of the process that uses a folder of the demo's data (PGlite's
// database, the private Redis's AOF), so that a second demo on the same folder is refused
// instead of opening it too. A lock whose process has died (killed, machine restarted) is stale
// and taken over. Taking over happens under a short-lived guard file, so two starters that find
// the same stale lock cannot both take it.
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { processAlive } from '../process-alive.js';

export class FolderLockedError extends Error {
  override name = 'FolderLockedError';
}

/** A guard older than this was left by a process that died while taking a lock over. */
const GUARD_STALE_MS = 10_000;

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Creates `file` holding this pid; false when it exists already. */
function create(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** When the file was last written; 0 when it is gone (so it counts as old). */
function mtimeMs(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function removeIf(file: string, test: () => boolean): void {
  try {
    if (test()) unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes the lock `file` for this process, or throws FolderLockedError naming the live holder;
 * `describe(pid)` words that message. Resolves with the release function.
 */
export async function acquirePidLock(file: string, describe: (pid: number) => string): Promise<() => void> {
  for (let attempt = 0; attempt < 40; attempt++) {
    if (create(file)) {
      return () => removeIf(file, () => readPid(file) === process.pid);
    }
    const holder = readPid(file);
    if (holder !== undefined && processAlive(holder)) throw new FolderLockedError(describe(holder));
    // An empty lock is one being written this instant, unless it has been empty for a while.
    if (holder === undefined && Date.now() - mtimeMs(file) < 1000) {
      await sleep(50);
      continue;
    }
    const guard = `${file}.takeover`;
    removeIf(guard, () => Date.now() - mtimeMs(guard) > GUARD_STALE_MS);
    if (!create(guard)) {
      await sleep(50); // another starter is taking it over; the next look sees its pid
      continue;
    }
    try {
      // Still the stale holder's lock, not one a faster starter has written since?
      removeIf(file, () => readPid(file) === holder);
    } finally {
      removeIf(guard, () => true);
    }
  }
  throw new FolderLockedError(`could not take the lock ${file}; remove it if no other demo runs`);
}
