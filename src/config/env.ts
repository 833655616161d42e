// The process environment, parsed once at the edge. Nothing else in the service reads
// process.env: the parsed value is handed down.
import os from 'node:os';
import { z } from 'zod';
import { ConfigError, issuesToDetails, type ErrorDetail } from './config-error.js';
import { DISPATCH_POLICIES, type DispatchPolicy } from './dispatch-policy.js';
import { tokenValue as token } from './tokens.js';
import { resolveSecretFiles, type ReadSecret } from './secret-files.js';
import { postgresTls, type PostgresTls } from './postgres-tls.js';
import { redisConfigFromUrl, redisUrlProblem, sentinelConfig, withCredentials, withTlsFiles, type RedisConfig } from './redis-config.js';

const flag = z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true');

const envSchema = z.object({
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
    .superRefine((url, ctx) => {
      const problem = redisUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  REDIS_USERNAME: z.string().regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional(),
  REDIS_PASSWORD: z.string().optional(),
  REDIS_SENTINELS: z.string().min(1).optional(),
  REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be a sentinel master name (letters, digits, ".", "_", "-")').optional(),
  REDIS_SENTINEL_USERNAME: z.string().regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional(),
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
  REDIS_TLS: flag.optional(),
  REDIS_SENTINEL_TLS: flag.optional(),
  REDIS_TLS_CA_FILE: z.string().min(1).optional(),
  REDIS_TLS_CERT_FILE: z.string().min(1).optional(),
  REDIS_TLS_KEY_FILE: z.string().min(1).optional(),
  DATABASE_URL: z
    .url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// URL' })
    .optional(),
  DATABASE_PASSWORD: z.string().optional(),
  CAELUM_HOST: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/i, 'must be letters, digits and dashes')
    .optional(),
  CAELUM_CONFIG: z.string().min(1).default('workers.config.ts'),
  // In braces ({caelum}), a Redis Cluster hash tag: every key of the service in one slot.
  CAELUM_PREFIX: z
    .string()
    .regex(/^(\{[a-z0-9][a-z0-9_-]*\}|[a-z0-9][a-z0-9_-]*)$/i, 'must be letters, digits, dashes and underscores, or those in braces ({caelum}) as a Redis Cluster hash tag')
    .default('caelum'),
  CAELUM_DATA_DIR: z.string().min(1).default('.caelum'),
  CAELUM_DB_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier')
    .default('public'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  BIND_ADDRESS: z.string().min(1).default('127.0.0.1'),
  CAELUM_API_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  CAELUM_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  CAELUM_API_TOKEN: token.optional(),
  CAELUM_READ_TOKEN: token.optional(),
  CAELUM_TOKENS_FILE: z.string().min(1).optional(),
  CAELUM_REDIS_MIN_REPLICAS: z.coerce.number().int().min(0).max(16).default(0),
  // Below the producer connection's command bound (3 s), which WAIT runs under.
  CAELUM_REDIS_WAIT_MS: z.coerce.number().int().min(10).max(2500, 'must be at most 2500 (a command on the API\'s connection gives up after 3000)').default(1000),
  CAELUM_JOB_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  CAELUM_STALLED_CHECK_MS: z.coerce.number().int().min(500).default(30_000),
  CAELUM_HEARTBEAT_MS: z.coerce.number().int().min(200).default(5_000),
  CAELUM_KILL_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  CAELUM_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
  CAELUM_STARVATION_GUARD_MS: z.coerce.number().int().min(0).default(2_000),
  CAELUM_DISPATCH_POLICY: z.enum(DISPATCH_POLICIES).default('backfill'),
  CAELUM_BACKFILL_OVERRUN_MS: z.coerce.number().int().min(0).default(30_000),
  CAELUM_PREEMPT_AFTER_MS: z.coerce.number().int().min(0).default(120_000),
  CAELUM_PREEMPT_INTERVAL_MS: z.coerce.number().int().min(0).default(30 * 60_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Env {
  /** Undefined when no REDIS_* variable is set, so that `demo` can tell "use the default" from "use exactly this". */
  redis: RedisConfig | undefined;
  /** DATABASE_URL with DATABASE_PASSWORD in it and its TLS parameters taken out; undefined when neither is set. */
  databaseUrl: string | undefined;
  /** TLS to PostgreSQL, from DATABASE_URL's sslmode, sslrootcert, sslcert and sslkey. */
  databaseTls: PostgresTls | undefined;
  host: string;
  hostIsExplicit: boolean;
  configPath: string;
  prefix: string;
  dataDir: string;
  dbSchema: string;
  port: number;
  bindAddress: string;
  /** Where the CLI finds the API. */
  apiUrl: string | undefined;
  /**
   * Where worker and scheduler processes serve /metrics (the API serves it on its own port);
   * unset: 9464 for a worker, 9465 for a scheduler, so both fit on one machine.
   */
  metricsPort: number | undefined;
  apiToken: string | undefined;
  readToken: string | undefined;
  /** Named tokens with scopes, stored hashed (src/config/tokens.ts); read by the processes that serve the API. */
  tokensFile: string | undefined;
  /** Enqueues (API, scheduler) are acknowledged once this many replicas have them (Redis WAIT). */
  durability: { replicas: number; timeoutMs: number };
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  worker: {
    lockDurationMs: number;
    stalledIntervalMs: number;
    heartbeatMs: number;
    killGraceMs: number;
    shutdownGraceMs: number;
    starvationGuardMs: number;
    dispatchPolicy: DispatchPolicy;
    backfillOverrunMs: number;
    preemptAfterMs: number;
    preemptIntervalMs: number;
  };
}

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/caelum';

/** `readSecret` reads the files of NAME_FILE variables (secret-files.ts). */
export function parseEnv(source: Record<string, string | undefined>, readSecret?: ReadSecret): Env {
  const secrets = resolveSecretFiles(source, readSecret);
  if (secrets.problems.length > 0) throw new ConfigError('environment', secrets.problems);
  const resolved = secrets.env;
  // An empty variable means unset: `FOO= cmd` is how people clear one.
  const cleaned = Object.fromEntries(Object.entries(resolved).filter(([, v]) => v !== undefined && v !== ''));
  const result = envSchema.safeParse(cleaned);
  if (!result.success) throw new ConfigError('environment', issuesToDetails(result.error.issues));
  const e = result.data;
  const problems: ErrorDetail[] = [];
  if (e.CAELUM_API_TOKEN && e.CAELUM_API_TOKEN === e.CAELUM_READ_TOKEN) {
    problems.push({ path: 'CAELUM_READ_TOKEN', message: 'must differ from CAELUM_API_TOKEN, or readers could operate' });
  }
  const anyRedis = Object.keys(e).some((name) => name.startsWith('REDIS_'));
  const sentinel = sentinelConfig({
    url: e.REDIS_URL,
    sentinels: e.REDIS_SENTINELS,
    name: e.REDIS_SENTINEL_NAME,
    username: e.REDIS_SENTINEL_USERNAME,
    password: e.REDIS_SENTINEL_PASSWORD,
    tls: e.REDIS_TLS,
    sentinelTls: e.REDIS_SENTINEL_TLS,
  });
  problems.push(...sentinel.problems);
  const server: RedisConfig = sentinel.sentinel
    ? { host: '', port: 0, db: 0, sentinel: sentinel.sentinel, tls: e.REDIS_TLS ? {} : undefined }
    : redisConfigFromUrl(e.REDIS_URL ?? DEFAULT_REDIS_URL);
  const credentials = withCredentials(server, { username: e.REDIS_USERNAME, password: e.REDIS_PASSWORD });
  const redis = withTlsFiles(credentials.config, { caFile: e.REDIS_TLS_CA_FILE, certFile: e.REDIS_TLS_CERT_FILE, keyFile: e.REDIS_TLS_KEY_FILE });
  problems.push(...credentials.problems, ...redis.problems);
  let databaseUrl = e.DATABASE_URL;
  if (e.DATABASE_PASSWORD !== undefined) {
    const u = new URL(databaseUrl ?? DEFAULT_DATABASE_URL);
    if (u.password) problems.push({ path: 'DATABASE_PASSWORD', message: 'DATABASE_URL holds a password as well; set one of them' });
    // The URL API percent-encodes it; the driver decodes it again.
    u.password = e.DATABASE_PASSWORD;
    databaseUrl = u.toString();
  }
  const pg = databaseUrl === undefined ? undefined : postgresTls(databaseUrl);
  problems.push(...(pg?.problems ?? []));
  if (problems.length > 0) throw new ConfigError('environment', problems);
  return {
    redis: anyRedis ? redis.config : undefined,
    databaseUrl: pg?.url,
    databaseTls: pg?.tls,
    host: e.CAELUM_HOST ?? os.hostname(),
    hostIsExplicit: e.CAELUM_HOST !== undefined,
    configPath: e.CAELUM_CONFIG,
    prefix: e.CAELUM_PREFIX,
    dataDir: e.CAELUM_DATA_DIR,
    dbSchema: e.CAELUM_DB_SCHEMA,
    port: e.PORT,
    bindAddress: e.BIND_ADDRESS,
    metricsPort: e.CAELUM_METRICS_PORT,
    apiUrl: e.CAELUM_API_URL,
    apiToken: e.CAELUM_API_TOKEN,
    readToken: e.CAELUM_READ_TOKEN,
    tokensFile: e.CAELUM_TOKENS_FILE,
    durability: { replicas: e.CAELUM_REDIS_MIN_REPLICAS, timeoutMs: e.CAELUM_REDIS_WAIT_MS },
    logLevel: e.LOG_LEVEL,
    worker: {
      lockDurationMs: e.CAELUM_JOB_LOCK_MS,
      stalledIntervalMs: e.CAELUM_STALLED_CHECK_MS,
      heartbeatMs: e.CAELUM_HEARTBEAT_MS,
      killGraceMs: e.CAELUM_KILL_GRACE_MS,
      shutdownGraceMs: e.CAELUM_SHUTDOWN_GRACE_MS,
      starvationGuardMs: e.CAELUM_STARVATION_GUARD_MS,
      dispatchPolicy: e.CAELUM_DISPATCH_POLICY,
      backfillOverrunMs: e.CAELUM_BACKFILL_OVERRUN_MS,
      preemptAfterMs: e.CAELUM_PREEMPT_AFTER_MS,
      preemptIntervalMs: e.CAELUM_PREEMPT_INTERVAL_MS,
    },
  };
}
