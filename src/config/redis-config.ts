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

export interface RedisConfig {
  host: string;
  port: number;
  db: number;
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
    return { config, problems: named.map(([variable]) => ({ path: variable, message: 'Redis TLS is off: use a rediss:// URL' })) };
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

/** For messages and logs: where, as whom, never the password. */
export function describeRedis(c: RedisConfig): string {
  const host = c.host.includes(':') ? `[${c.host}]` : c.host;
  return `${c.tls ? 'rediss' : 'redis'}://${c.username ? `${c.username}@` : ''}${host}:${c.port}${c.db ? `/${c.db}` : ''}`;
}
