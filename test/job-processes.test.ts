// The run mark search: a window of pids (taken before a run's spawn) finds the run's processes,
// including one that left its group, without reading the environment of every process.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { newRunId, pidWindow, processesOfRun, RUN_MARK } from '../src/workers/job-processes.js';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function marked(runId: string): ChildProcess {
  // detached: a session of its own, as a helper that called setsid would be.
  const child = spawn('sleep', ['30'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', [RUN_MARK]: runId }, detached: true, stdio: 'ignore' });
  started.push(child);
  return child;
}

describe.runIf(process.platform === 'linux')('processesOfRun', () => {
  it('finds a run spawned after its window was taken, and only the run it is asked for', async () => {
    const runId = newRunId();
    const window = pidWindow();
    expect(window).toBeDefined();
    const child = marked(runId);
    const other = marked(newRunId());
    expect(await processesOfRun(runId, window)).toEqual([child.pid]);
    expect(await processesOfRun(runId)).toEqual([child.pid]);
    expect(await processesOfRun(newRunId(), window)).toEqual([]);
    expect(other.pid).toBeDefined();
  });

  it('a window taken after a process was spawned does not search where it is; the whole of /proc does', async () => {
    const runId = newRunId();
    const child = marked(runId);
    // A fork of our own moves the kernel's last pid past the child's.
    const bump = spawn('true');
    await new Promise((r) => bump.once('exit', r));
    const late = pidWindow();
    expect(await processesOfRun(runId, late)).toEqual([]);
    expect(await processesOfRun(runId)).toEqual([child.pid]);
  });
});
