// A real `caelum-scheduler api|scheduler|worker` process with exactly the environment the test
// gives it (nothing inherited but PATH and HOME), its output kept whole so the test can read the
// log, and a stop that sends SIGTERM to that one pid and waits for it.
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { REPO_ROOT } from './fleet.js';
import { waitFor } from './wait.js';

export const BIN = path.join(REPO_ROOT, 'bin/caelum-scheduler.js');

export interface ServiceProcess {
  child: ResultPromise;
  pid: number;
  /** Everything it wrote, standard output and error interleaved. */
  output(): string;
  /** Where it serves HTTP: the API, or the metrics of a worker or scheduler. */
  url: string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | undefined>;
}

/** Starts the process and resolves once it logs that it is up (at LOG_LEVEL info or below), or rejects with its output. */
export async function startService(argv: string[], env: Record<string, string>, opts: { timeoutMs?: number } = {}): Promise<ServiceProcess> {
  const child = execa('node', [BIN, ...argv], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...env },
    extendEnv: false,
    reject: false,
    all: true,
  });
  let out = '';
  child.all!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  let exited = false;
  const exit = child.then((r) => {
    exited = true;
    return r;
  });
  const url = await Promise.race([
    waitFor(
      `caelum-scheduler ${argv.join(' ')} to start`,
      () => {
        const up = out.split('\n').find((line) => line.includes('"caelum-scheduler is up"'));
        return up ? ((JSON.parse(up) as { url: string }).url ?? '') : undefined;
      },
      { timeoutMs: opts.timeoutMs ?? 30_000 },
    ),
    exit.then((r) => Promise.reject(new Error(`caelum-scheduler ${argv.join(' ')} exited (${r.exitCode}) before it was up:\n${out}`))),
  ]).catch(async (err: unknown) => {
    if (!exited) child.kill('SIGKILL');
    await exit;
    throw exited && out ? new Error(`${(err as Error).message}\n${out}`) : err;
  });
  return {
    child,
    pid: child.pid!,
    output: () => out,
    url,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      return (await child).exitCode;
    },
  };
}

/**
 * The environment of a stack on test/fixtures/production.config.mts: quick heartbeats, every port
 * chosen by the system, info logs (startService waits for the "up" line); `extra` adds the stores.
 */
export function stackEnv(dataDir: string, extra: Record<string, string>): Record<string, string> {
  return {
    CAELUM_CONFIG: path.join(REPO_ROOT, 'test/fixtures/production.config.mts'),
    CAELUM_DATA_DIR: dataDir,
    CAELUM_METRICS_PORT: '0',
    CAELUM_HEARTBEAT_MS: '500',
    PORT: '0',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

/** The api, a scheduler and the workers of host-a and host-b (the production fixture's hosts), in that order. */
export async function startStack(env: Record<string, string>, into: ServiceProcess[]): Promise<ServiceProcess> {
  const api = await startService(['api'], env);
  into.push(api);
  for (const argv of [['scheduler'], ['worker', '--host', 'host-a'], ['worker', '--host', 'host-b']]) into.push(await startService(argv, env));
  return api;
}

export interface Answer {
  status: number;
  // The API's JSON, read loosely by tests.
  body: Record<string, any>;
}

/** Calls a running API with a bearer token: `call('POST', '/api/jobs/training', body, headers)`. */
export function apiCaller(base: string, token: string) {
  return async (method: string, url: string, body?: object, headers: Record<string, string> = {}): Promise<Answer> => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  };
}
