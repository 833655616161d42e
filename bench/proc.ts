// Starts bench/worker-proc.ts as a separate process and talks to it over stdio.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { BENCH_DIR, REPO_ROOT } from './lib.js';

export interface WorkerProc {
  child: ChildProcess;
  /** Closes the worker and returns its peak RSS in KiB. */
  stop(timeoutMs?: number): Promise<number>;
}

export function startWorkerProc(args: Record<string, unknown>, readyTimeoutMs = 30_000): Promise<WorkerProc> {
  // BENCH_WORKER_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof': profile the worker processes.
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(BENCH_DIR, 'worker-proc.ts'), JSON.stringify(args)], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL || 'error' },
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const messages: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      messages.push(JSON.parse(line) as Record<string, unknown>);
      waiters.splice(0).forEach((w) => w());
    } catch {
      /* not ours */
    }
  });
  let exited = false;
  child.on('exit', () => {
    exited = true;
    waiters.splice(0).forEach((w) => w());
  });
  const next = (key: string, timeoutMs: number) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker process: no "${key}" after ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      const check = () => {
        const m = messages.find((x) => key in x);
        if (m) {
          clearTimeout(timer);
          return resolve(m);
        }
        if (exited) {
          clearTimeout(timer);
          return reject(new Error(`worker process exited before "${key}"; stderr: ${stderr}`));
        }
        waiters.push(check);
      };
      check();
    });
  const proc: WorkerProc = {
    child,
    async stop(timeoutMs = 15_000) {
      if (!exited) child.stdin!.write('stop\n');
      try {
        const m = await next('maxRssKiB', timeoutMs);
        // Its own exit, not a SIGKILL, when it can: a profile (--cpu-prof) is written at exit.
        await new Promise<void>((resolve) => {
          if (exited) return resolve();
          const timer = setTimeout(resolve, 5000);
          child.once('exit', () => (clearTimeout(timer), resolve()));
        });
        return Number(m.maxRssKiB);
      } finally {
        if (!exited) child.kill('SIGKILL');
      }
    },
  };
  return next('ready', readyTimeoutMs).then(
    () => proc,
    (err: unknown) => {
      child.kill('SIGKILL');
      throw err;
    },
  );
}
