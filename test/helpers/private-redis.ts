// A redis-server of the test's own, on a free port with its data in a folder of the test's own,
// that the test may kill -9 and start again on the same port and folder: the nemesis of a Redis
// restart, with or without its append-only file. It dies with the test process (pdeathsig).
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from '../../src/net.js';
import { PDEATHSIG_PREFIX } from '../../src/workers/child-runner.js';
import { waitFor } from './wait.js';

export interface PrivateRedisOptions {
  appendOnly: boolean;
  /** More redis-server arguments (a password, ACL users, TLS files, replicaof, …). */
  args?: string[];
  /** Serve TLS only, on the port (the arguments name the certificate files). */
  tls?: boolean;
  /** How the readiness probe connects (credentials, TLS options). */
  client?: RedisOptions;
}

export class PrivateRedis {
  private server: { child: ChildProcess; exited: Promise<void> } | undefined;

  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly opts: PrivateRedisOptions,
  ) {}

  static async start(dir: string, opts: PrivateRedisOptions): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), dir, opts);
    await redis.restart();
    return redis;
  }

  /** The server's pid while it runs. */
  get pid(): number | undefined {
    return this.server?.child.pid;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server on its port and folder, and resolves once it answers PING. */
  async restart(): Promise<void> {
    if (this.server) throw new Error('the private redis-server is running');
    const persistence = this.opts.appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no'];
    const ports = this.opts.tls ? ['--port', '0', '--tls-port', String(this.port)] : ['--port', String(this.port)];
    const argv = ['redis-server', ...ports, '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', ...persistence, ...(this.opts.args ?? [])];
    const [program, ...args] = [...PDEATHSIG_PREFIX, ...argv];
    const child = spawn(program!, args, { stdio: 'ignore' });
    this.server = { child, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
    const probe = new Redis({ host: '127.0.0.1', port: this.port, ...this.opts.client, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await waitFor(
        `redis-server on port ${this.port} to answer`,
        async () => {
          if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
          if (probe.status !== 'ready') await probe.connect().catch(() => {});
          return probe.status === 'ready' && (await probe.ping()) === 'PONG';
        },
        { timeoutMs: 10_000 },
      );
    } finally {
      probe.disconnect();
    }
  }

  /** kill -9 of the server (when it runs); resolves once it has exited. */
  async kill9(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.child.kill('SIGKILL');
    await server.exited;
    this.server = undefined;
  }
}
