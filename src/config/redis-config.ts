// Where Redis is and how to log in: parsed from REDIS_URL and the REDIS_* variables at start,
// handed to src/redis.ts, which builds every connection from it.
import { readFileSync } from 'node:fs';
import type { ErrorDetail } from './config-error.js';

/** TLS to Redis: PEM contents, read at start. No CA: the system's authorities. */
export interface RedisTls {
  ca?: string | undefined;
  /** A client certificate and its key, for a Redis with tls-auth-clients on. */
  cert?: string | undefined;
  key?: string | undefined;
}

/** Redis Sentinel: the sentinels to ask, and the name they monitor the primary under. */
export interface SentinelConfig {
  nodes: { host: string; port: number }[];
  name: string;
  /** The sentinels' own credentials (their requirepass or ACL user), when they have any. */
  username?: string | undefined;
  password?: string | undefined;
  /** TLS to the sentinels too, with the same CA and client certificate. */
  tls: boolean;
}

export interface RedisConfig {
  /** The one server of REDIS_URL; with `sentinel`, not used (empty): the sentinels name the primary. */
  host: string;
  port: number;
  db: number;
  /** Follow the primary the sentinels name, through failovers. */
  sentinel?: SentinelConfig | undefined;
  /** A Redis ACL user (Redis 6+); without one, the default user. */
  username?: string | undefined;
  password?: string | undefined;
  /** rediss://: TLS, the server's certificate verified (against the CA file, or the system's). */
  tls?: RedisTls | undefined;
}

export const DEFAULT_REDIS_PORT = 6379;

/** The parts of a redis:// or rediss:// URL (the caller has checked its scheme). */
export function redisConfigFromUrl(url: string): RedisConfig {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : DEFAULT_REDIS_PORT,
    db: Number.isInteger(db) ? db : 0,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

export interface RedisTlsFiles {
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/** Reads the TLS files into the configuration; each problem names its variable. */
export function withTlsFiles(config: RedisConfig, files: RedisTlsFiles): { config: RedisConfig; problems: ErrorDetail[] } {
  const problems: ErrorDetail[] = [];
  const named = Object.entries({ REDIS_TLS_CA_FILE: files.caFile, REDIS_TLS_CERT_FILE: files.certFile, REDIS_TLS_KEY_FILE: files.keyFile }).filter(
    (e): e is [string, string] => e[1] !== undefined,
  );
  if (named.length === 0) return { config, problems };
  if (!config.tls) {
    return { config, problems: named.map(([variable]) => ({ path: variable, message: 'Redis TLS is off: use a rediss:// URL (or REDIS_TLS=true with Sentinel)' })) };
  }
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    problems.push({ path: files.certFile ? 'REDIS_TLS_KEY_FILE' : 'REDIS_TLS_CERT_FILE', message: 'a client certificate needs its key, and a key its certificate' });
  }
  const read = (variable: string, file: string | undefined): string | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      problems.push({ path: variable, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
      return undefined;
    }
  };
  const tls: RedisTls = {
    ca: read('REDIS_TLS_CA_FILE', files.caFile),
    cert: read('REDIS_TLS_CERT_FILE', files.certFile),
    key: read('REDIS_TLS_KEY_FILE', files.keyFile),
  };
  return { config: { ...config, tls }, problems };
}

/** The URL's database path must be a number, as redis-cli and ioredis read it. */
export function redisUrlProblem(url: string): string | undefined {
  const path = new URL(url).pathname;
  return path.length > 1 && !/^\/\d{1,2}$/.test(path) ? `the path must be a database number (/0 … /15), not "${path}"` : undefined;
}

/**
 * The URL's settings with REDIS_USERNAME and REDIS_PASSWORD applied. A password both in the URL
 * and in REDIS_PASSWORD is refused rather than one silently winning.
 */
export function withCredentials(
  config: RedisConfig,
  vars: { username?: string | undefined; password?: string | undefined },
): { config: RedisConfig; problems: ErrorDetail[] } {
  const problems: ErrorDetail[] = [];
  if (vars.password !== undefined && config.password !== undefined) {
    problems.push({ path: 'REDIS_PASSWORD', message: 'REDIS_URL holds a password as well; set one of them' });
  }
  if (vars.username !== undefined && config.username !== undefined) {
    problems.push({ path: 'REDIS_USERNAME', message: 'REDIS_URL names a user as well; set one of them' });
  }
  return {
    config: { ...config, username: vars.username ?? config.username, password: vars.password ?? config.password },
    problems,
  };
}

const hostPort = (n: { host: string; port: number }) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`;

/**
 * REDIS_SENTINELS (`host:port,host:port`, IPv6 as `[::1]:26379`) and the variables that go
 * with it, onto the credentials and TLS of the data nodes. REDIS_URL names one server, so it and
 * the sentinels exclude each other.
 */
export function sentinelConfig(vars: {
  url?: string | undefined;
  sentinels?: string | undefined;
  name?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  tls?: boolean | undefined;
  sentinelTls?: boolean | undefined;
}): { sentinel: SentinelConfig | undefined; problems: ErrorDetail[] } {
  const problems: ErrorDetail[] = [];
  if (vars.sentinels === undefined) {
    const stray = Object.entries({ REDIS_SENTINEL_NAME: vars.name, REDIS_SENTINEL_USERNAME: vars.username, REDIS_SENTINEL_PASSWORD: vars.password, REDIS_SENTINEL_TLS: vars.sentinelTls, REDIS_TLS: vars.tls });
    for (const [variable, value] of stray) {
      if (value !== undefined) problems.push({ path: variable, message: variable === 'REDIS_TLS' ? 'only with REDIS_SENTINELS; for one server use a rediss:// URL' : 'only with REDIS_SENTINELS' });
    }
    return { sentinel: undefined, problems };
  }
  if (vars.url !== undefined) problems.push({ path: 'REDIS_SENTINELS', message: 'REDIS_URL is set as well; with Sentinel the sentinels name the primary, so set one of them' });
  if (vars.name === undefined) problems.push({ path: 'REDIS_SENTINEL_NAME', message: 'required with REDIS_SENTINELS: the name the sentinels monitor the primary under (sentinel monitor <name> …)' });
  const nodes = vars.sentinels
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const m = /^(?:\[([0-9a-f:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/i.exec(entry);
      const port = Number(m?.[3]);
      if (!m || port < 1 || port > 65535) {
        problems.push({ path: 'REDIS_SENTINELS', message: `"${entry}" is not host:port (IPv6 as [::1]:26379)` });
        return undefined;
      }
      return { host: (m[1] ?? m[2])!, port };
    })
    .filter((n): n is { host: string; port: number } => n !== undefined);
  if (nodes.length === 0 && problems.length === 0) problems.push({ path: 'REDIS_SENTINELS', message: 'name at least one sentinel' });
  return { sentinel: { nodes, name: vars.name ?? '', username: vars.username, password: vars.password, tls: vars.sentinelTls ?? false }, problems };
}

/** For messages and logs: where, as whom, never the password. */
export function describeRedis(c: RedisConfig): string {
  const user = c.username ? `${c.username}@` : '';
  const scheme = c.tls ? 'rediss' : 'redis';
  if (c.sentinel) return `${scheme}://${user}<primary "${c.sentinel.name}" of sentinels ${c.sentinel.nodes.map(hostPort).join(',')}>${c.db ? `/${c.db}` : ''}`;
  return `${scheme}://${user}${hostPort(c)}${c.db ? `/${c.db}` : ''}`;
}
