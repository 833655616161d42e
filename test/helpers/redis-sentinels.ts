// A Redis primary, its replica and three sentinels of the test's own, on free ports with their
// files in the test's folder, each a child of the test that dies with it (pdeathsig). The test
// may kill -9 a node by its pid and start it again on the same port and folder. Optionally all
// of them speak TLS only and ask for passwords, as in production.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { freePort } from '../../src/net.js';
import { PDEATHSIG_PREFIX } from '../../src/workers/child-runner.js';
import { PrivateRedis } from './private-redis.js';
import { waitFor } from './wait.js';

/** Fast replication and failover, for a test: a replica's full sync starts at once. */
const NODE_ARGS = ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0'];

export interface Login {
  user: string;
  password: string;
}

export interface SentinelsSecurity {
  /** PEM files of the servers' certificate and the CA: every node and sentinel then speaks TLS only. */
  tls?: { cert: string; key: string; ca: string };
  /** The nodes' ACL users (a file of `user` lines), and who logs in as which. */
  acl?: { file: string; replica: Login; sentinel: Login; admin: Login };
  /** The sentinels' own requirepass. */
  sentinelPassword?: string;
}

/** How the test's own probes connect to a node or a sentinel. */
function probeOptions(security: SentinelsSecurity, login: Partial<Login> | undefined): RedisOptions {
  const tls = security.tls ? { tls: { ca: readFileSync(security.tls.ca) } } : {};
  return { ...tls, ...(login?.user ? { username: login.user } : {}), ...(login?.password ? { password: login.password } : {}) };
}

/** redis-server arguments (or sentinel.conf lines) for TLS only, replication over TLS too. */
function tlsSettings(tls: SentinelsSecurity['tls'], port: number): [string, string][] {
  if (!tls) return [['port', String(port)]];
  return [
    ['port', '0'],
    ['tls-port', String(port)],
    ['tls-cert-file', tls.cert],
    ['tls-key-file', tls.key],
    ['tls-ca-cert-file', tls.ca],
    ['tls-auth-clients', 'no'],
    ['tls-replication', 'yes'],
  ];
}

class Sentinel {
  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly exited: Promise<void>,
    private readonly probe: RedisOptions,
  ) {}

  static async start(dir: string, name: string, primaryPort: number, security: SentinelsSecurity): Promise<Sentinel> {
    const port = await freePort();
    mkdirSync(dir, { recursive: true });
    const conf = path.join(dir, 'sentinel.conf');
    // The sentinel rewrites this file as it learns the replicas, the other sentinels and failovers.
    writeFileSync(
      conf,
      [
        ...tlsSettings(security.tls, port).map(([k, v]) => `${k} ${v}`),
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
        // Not 1 s: on a loaded 2-core CI machine a ping can wait longer than that, the sentinels
        // then flap the nodes' down state, and they do not turn a returning old primary into a
        // replica while they do (a CI run waited 90 s for it). 3 s costs 2 s of promotion time.
        `sentinel down-after-milliseconds ${name} 3000`,
        `sentinel failover-timeout ${name} 5000`,
        `sentinel parallel-syncs ${name} 1`,
        ...(security.acl ? [`sentinel auth-user ${name} ${security.acl.sentinel.user}`, `sentinel auth-pass ${name} ${security.acl.sentinel.password}`] : []),
        ...(security.sentinelPassword ? [`requirepass ${security.sentinelPassword}`, `sentinel sentinel-pass ${security.sentinelPassword}`] : []),
        '',
      ].join('\n'),
    );
    const [program, ...args] = [...PDEATHSIG_PREFIX, 'redis-server', conf, '--sentinel'];
    const child = spawn(program!, args, { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const sentinel = new Sentinel(port, child, exited, probeOptions(security, { password: security.sentinelPassword }));
    await waitFor(`sentinel on port ${port}`, async () => (await sentinel.ask('PING')) === 'PONG', { timeoutMs: 10_000 });
    return sentinel;
  }

  /** One command to this sentinel on a connection of its own. */
  async ask(...command: string[]): Promise<unknown> {
    const client = new Redis({ host: '127.0.0.1', port: this.port, ...this.probe, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      return await client.call(command[0]!, ...command.slice(1));
    } finally {
      client.disconnect();
    }
  }

  async kill9(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export class RedisSentinels {
  private constructor(
    readonly name: string,
    readonly primary: PrivateRedis,
    readonly replica: PrivateRedis,
    readonly sentinels: Sentinel[],
    private readonly probe: RedisOptions,
  ) {}

  /** A primary, a replica of it and three sentinels (quorum 2), all seeing each other. */
  static async start(dir: string, opts: { name?: string; security?: SentinelsSecurity } = {}): Promise<RedisSentinels> {
    const name = opts.name ?? 'caelum';
    const security = opts.security ?? {};
    const probe = probeOptions(security, security.acl?.admin);
    // PrivateRedis sets the ports itself (TLS only, with `tls`).
    const nodeArgs = [
      ...NODE_ARGS,
      ...tlsSettings(security.tls, 0)
        .filter(([k]) => k !== 'port' && k !== 'tls-port')
        .flatMap(([k, v]) => [`--${k}`, v]),
      ...(security.acl ? ['--include', security.acl.file, '--masteruser', security.acl.replica.user, '--masterauth', security.acl.replica.password] : []),
    ];
    for (const node of ['node-a', 'node-b']) mkdirSync(path.join(dir, node), { recursive: true });
    const tls = Boolean(security.tls);
    const primary = await PrivateRedis.start(path.join(dir, 'node-a'), { appendOnly: false, tls, args: nodeArgs, client: probe });
    const replica = await PrivateRedis.start(path.join(dir, 'node-b'), { appendOnly: false, tls, args: [...nodeArgs, '--replicaof', '127.0.0.1', String(primary.port)], client: probe });
    const sentinels = await Promise.all([1, 2, 3].map((n) => Sentinel.start(path.join(dir, `sentinel-${n}`), name, primary.port, security)));
    const set = new RedisSentinels(name, primary, replica, sentinels, probe);
    await waitFor(
      'the sentinels to know each other and the replica',
      async () => {
        for (const s of sentinels) {
          const replicas = (await s.ask('SENTINEL', 'REPLICAS', name)) as unknown[];
          const others = (await s.ask('SENTINEL', 'SENTINELS', name)) as unknown[];
          if (replicas.length < 1 || others.length < 2) return false;
        }
        return true;
      },
      { timeoutMs: 30_000 },
    );
    return set;
  }

  /** `REDIS_SENTINELS` for the processes under test. */
  get addresses(): string {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  /** The port of the node the sentinels name as primary now. */
  async primaryPort(): Promise<number> {
    const [, port] = (await this.sentinels[0]!.ask('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name)) as [string, string];
    return Number(port);
  }

  /** A command to the node on `port`, on a connection of its own. */
  private async onNode<T>(port: number, command: (client: Redis) => Promise<T>): Promise<T> {
    const client = new Redis({ host: '127.0.0.1', port, ...this.probe, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    client.on('error', () => {});
    try {
      return await command(client);
    } finally {
      client.disconnect();
    }
  }

  /** Closes the replication connections of the primary on `port` (its replicas reconnect, when they can). */
  async cutReplicationLinks(port: number): Promise<void> {
    await this.onNode(port, (c) => c.call('CLIENT', 'KILL', 'TYPE', 'replica'));
  }

  /** The replication offset of the node on `port`: how far into the primary's stream of writes it is. */
  async offset(port: number): Promise<number> {
    const info = await this.onNode(port, (c) => c.info('replication'));
    return Number(/^(?:slave_repl_offset|master_repl_offset):(\d+)/m.exec(info)?.[1]);
  }

  /** Resolves once the node on `port` is a primary with `replicas` replicas online. */
  async waitForReplicas(port: number, replicas: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      `the primary on ${port} to have ${replicas} replica(s) online`,
      async () => {
        const info = await this.onNode(port, (c) => c.info('replication'));
        return /role:master/.test(info) && (info.match(/^slave\d+:.*state=online/gm)?.length ?? 0) >= replicas;
      },
      { timeoutMs },
    );
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels.map((s) => s.kill9()), this.primary.kill9(), this.replica.kill9()]);
  }
}
