// For `demo` and `dev` on a laptop: use REDIS_URL when set, else the local Redis when one
// answers, else start a private redis-server from PATH and stop it on close. Its data lives in
// <data dir>/redis with AOF on, as the embedded PGlite database keeps its rows: a restarted
// demo has its queued and finished jobs back. The folder is locked like PGlite's.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { DEFAULT_REDIS_URL } from '../config/env.js';
import type { Logger } from '../logger.js';
import { answers, freePort } from '../net.js';
import { acquirePidLock } from './pid-lock.js';
import { PDEATHSIG_PREFIX } from '../workers/child-runner.js';

export interface ProvidedService {
  url: string;
  embedded: boolean;
  /** Where an embedded server keeps its data. */
  folder?: string;
  close(): Promise<void>;
}

export class MissingRedisError extends Error {
  override name = 'MissingRedisError';
}

export async function provideRedis(
  configured: string | undefined,
  dataDir: string,
  logger: Logger,
  localUrl: string = DEFAULT_REDIS_URL,
): Promise<ProvidedService> {
  const none = async () => {};
  if (configured) return { url: configured, embedded: false, close: none };
  const local = new URL(localUrl);
  if (await answers(local.hostname, Number(local.port || 6379))) return { url: localUrl, embedded: false, close: none };

  const folder = path.resolve(dataDir, 'redis');
  mkdirSync(folder, { recursive: true });
  const unlock = await acquirePidLock(
    `${folder}.lock`,
    (pid) => `the private Redis's data in ${folder} is in use by another demo (pid ${pid}); stop that one, or set CAELUM_DATA_DIR to another folder`,
  );
  try {
    return await startRedisServer(folder, local.host, logger, unlock);
  } catch (err) {
    unlock();
    throw err;
  }
}

async function startRedisServer(folder: string, localHost: string, logger: Logger, unlock: () => void): Promise<ProvidedService> {
  const port = await freePort();
  // Every write goes to the append-only file (fsync each second); no RDB snapshots besides. The
  // server dies with the demo even on kill -9 (pdeathsig), so it never outlives the folder's lock
  // and shares the folder with the next demo's server.
  const argv = ['--port', String(port), '--bind', '127.0.0.1', '--dir', folder, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--protected-mode', 'yes'];
  const [program, ...args] = [...PDEATHSIG_PREFIX, 'redis-server', ...argv];
  const child = spawn(program!, args, { stdio: 'ignore' });
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', () => resolve(false));
  });
  const missing = () =>
    new MissingRedisError(
      `No Redis answers on ${localHost} and there is no redis-server on PATH. ` +
        'Install one (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL.',
    );
  if (!spawned) throw missing();
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch (err) {
      // 127: setpriv found no redis-server to run.
      if (child.exitCode === 127) throw missing();
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw new MissingRedisError(`the private redis-server on port ${port} did not start: ${String(err)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  probe.disconnect();
  logger.info({ url, folder }, 'started a private redis-server (AOF on: its data outlives a restart)');
  return {
    url,
    embedded: true,
    folder,
    // SIGTERM: redis-server flushes its append-only file and exits.
    close: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          unlock();
          resolve();
        };
        if (child.exitCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGTERM');
      }),
  };
}
