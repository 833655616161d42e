// For `demo` and `dev` on a laptop: use REDIS_URL when set, else the local Redis when one
// answers, else start a private redis-server from PATH (no persistence) and stop it on close.
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { DEFAULT_REDIS_URL } from '../config/env.js';
import type { Logger } from '../logger.js';
import { answers, freePort } from '../net.js';

export interface ProvidedService {
  url: string;
  embedded: boolean;
  close(): Promise<void>;
}

export class MissingRedisError extends Error {
  override name = 'MissingRedisError';
}

export async function provideRedis(
  configured: string | undefined,
  logger: Logger,
  localUrl: string = DEFAULT_REDIS_URL,
): Promise<ProvidedService> {
  const none = async () => {};
  if (configured) return { url: configured, embedded: false, close: none };
  const local = new URL(localUrl);
  if (await answers(local.hostname, Number(local.port || 6379))) return { url: localUrl, embedded: false, close: none };

  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
    { stdio: 'ignore' },
  );
  const spawned = await new Promise<boolean>((resolve) => {
    child.once('spawn', () => resolve(true));
    child.once('error', () => resolve(false));
  });
  if (!spawned) {
    throw new MissingRedisError(
      `No Redis answers on ${local.host} and there is no redis-server on PATH. ` +
        'Install one (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL.',
    );
  }
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
      if (Date.now() > deadline || child.exitCode !== null) {
        child.kill('SIGKILL');
        throw new MissingRedisError(`the private redis-server on port ${port} did not start: ${String(err)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  probe.disconnect();
  logger.info({ url }, 'started a private redis-server (nothing is kept on disk)');
  return {
    url,
    embedded: true,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
