// `api`, `dev` and `demo`: the long-running processes. `api` needs real servers and tokens;
// `dev` and `demo` are for a laptop: they fall back to a private redis-server and an embedded
// PGlite database when nothing answers locally, and make tokens when none are set.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Env } from '../config/env.js';
import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL } from '../config/env.js';
import { loadFleet, type LoadedFleet } from '../config/load-fleet.js';
import { resolveNotificationSecrets } from '../config/notifications-schema.js';
import { importConfig } from '../import-config.js';
import { allTokens, loadTokensFile, type TokenEntry } from '../config/tokens.js';
import { ConfigError } from '../errors.js';
import { provideDatabase } from '../dev/embedded-postgres.js';
import { provideRedis } from '../dev/embedded-redis.js';
import { Closers, closeOnSignals } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import { listenProblem } from '../net.js';
import { shellQuote } from './shell-quote.js';
import { startServices, StartupError } from '../start.js';
import { childBaseEnv } from '../workers/child-env.js';
import { VERSION } from '../version.js';

export type ServeMode = 'api' | 'dev' | 'demo' | 'worker' | 'scheduler';

export interface ServeContext {
  env: Env;
  logger: Logger;
  /** The environment children start from; only the CLI reads process.env. */
  processEnv: Record<string, string | undefined>;
  /** `worker --host`, overriding CAELUM_HOST. */
  host?: string;
}


/** Which hosts this process works for: one named host, or (dev) every host of the config. */
function workerHosts(mode: ServeMode, ctx: ServeContext, fleet: LoadedFleet): string[] {
  const known = Object.keys(fleet.hosts);
  if (mode === 'worker') {
    const host = ctx.host ?? ctx.env.host;
    if (!(host in fleet.hosts)) {
      throw new ConfigError('worker', [
        { path: ctx.host ? '--host' : 'CAELUM_HOST', message: `unknown host "${host}"; the config has ${known.join(', ')}` },
      ]);
    }
    return [host];
  }
  if (ctx.env.hostIsExplicit && ctx.env.host in fleet.hosts) return [ctx.env.host];
  ctx.logger.info(
    { hosts: known },
    `CAELUM_HOST ${ctx.env.hostIsExplicit ? `"${ctx.env.host}" names no configured host` : 'is unset'}: the local worker stands in for every host of the config, with their declared GPUs`,
  );
  return known;
}

const makeToken = (label: string) => `${label}_${randomBytes(18).toString('base64url')}`;

/**
 * Refuses before anything starts when the port this process would serve on is taken (a second
 * demo, say): otherwise its workers and scheduler would start and it would fail at the end.
 */
async function assertCanListen(mode: ServeMode, host: string, port: number, variable: string): Promise<void> {
  if (port === 0) return;
  const problem = await listenProblem(host, port);
  if (!problem) return;
  if (problem !== 'EADDRINUSE') throw new StartupError(`cannot listen on ${host}:${port} (${problem}); set ${variable} or BIND_ADDRESS`);
  let spare = 0;
  for (let p = port + 1; p <= Math.min(port + 20, 65535) && !spare; p++) if (!(await listenProblem(host, p))) spare = p;
  const holder = mode === 'dev' || mode === 'demo' ? `the other ${mode}` : 'the process that holds it';
  throw new StartupError(`port ${port} on ${host} is in use; set ${variable}=${spare}${spare ? '' : ' (any free port)'} or stop ${holder}`);
}

export async function serve(mode: ServeMode, ctx: ServeContext): Promise<void> {
  const { env, logger } = ctx;
  const fleet = await loadFleet(env.configPath, process.cwd(), importConfig);
  const closers = new Closers(logger);
  const laptop = mode === 'dev' || mode === 'demo';
  const withApi = mode === 'api' || laptop;
  const metricsPort = env.metricsPort ?? (mode === 'worker' ? 9464 : 9465);
  await assertCanListen(mode, env.bindAddress, withApi ? env.port : metricsPort, withApi ? 'PORT' : 'CAELUM_METRICS_PORT');
  const hostIds = mode === 'worker' || laptop ? workerHosts(mode, ctx, fleet) : [];
  const withScheduler = mode === 'scheduler' || laptop;
  // Only the process that delivers reads the webhook secrets: a worker's environment reaches its jobs.
  const notificationSecrets = withScheduler ? resolveNotificationSecrets(fleet.notifications, ctx.processEnv, fleet.source) : undefined;
  try {
    // The environment's tokens, or (dev and demo) ones made for this run and printed.
    const shown: { operator?: string | undefined; read?: string | undefined } = { operator: env.apiToken, read: env.readToken };
    const made: string[] = [];
    if (!env.apiToken && withApi) {
      if (!laptop && !env.tokensFile) {
        throw new ConfigError('environment', [
          { path: 'CAELUM_API_TOKEN', message: 'required for the api (the operator token, 16+ characters), unless CAELUM_TOKENS_FILE names the tokens' },
        ]);
      }
      if (laptop) {
        shown.operator = makeToken('op');
        made.push('operator');
      }
    }
    if (!env.readToken && laptop) {
      shown.read = makeToken('read');
      made.push('read');
    }
    // Read once at start: a changed file takes effect when the api restarts.
    const tokens: TokenEntry[] = withApi
      ? allTokens({ apiToken: shown.operator, readToken: shown.read }, env.tokensFile ? loadTokensFile(env.tokensFile) : [], env.tokensFile ?? 'environment')
      : [];

    // A configured Redis is used as it is; dev and demo find or start one when none is.
    const providedRedis = laptop && !env.redis ? await provideRedis(undefined, env.dataDir, logger) : undefined;
    if (providedRedis) closers.add('redis server', () => providedRedis.close());
    const redis = env.redis ?? providedRedis?.url ?? DEFAULT_REDIS_URL;
    const db = laptop
      ? await provideDatabase(env.databaseUrl, env.dataDir, logger)
      : { url: env.databaseUrl ?? DEFAULT_DATABASE_URL, embedded: false, maxConnections: 10, close: async () => {} };
    closers.add('database server', () => db.close());

    const running = await startServices({
      fleet,
      logger,
      redis,
      databaseUrl: db.url,
      // Only for the configured server: the embedded PGlite of dev and demo speaks plain text.
      ...(db.embedded ? {} : { databaseTls: env.databaseTls }),
      prefix: env.prefix,
      poolMax: db.maxConnections,
      schema: env.dbSchema,
      ...(withApi ? { api: { tokens, port: env.port, host: env.bindAddress, requestLogLevel: laptop ? 'debug' : 'info' } } : {}),
      scheduler: withScheduler,
      ...(notificationSecrets ? { notificationSecrets } : {}),
      durability: env.durability,
      ...(withApi ? {} : { metricsServer: { port: metricsPort, host: env.bindAddress } }),
      ...(hostIds.length
        ? {
            workers: {
              hostIds,
              baseEnv: childBaseEnv(ctx.processEnv),
              dataDir: path.resolve(env.dataDir),
              version: VERSION,
              options: env.worker,
            },
          }
        : {}),
    });
    closers.add('services', () => running.close());

    if (laptop) {
      const model = Object.keys(fleet.models)[0] ?? '<model>';
      // Loaded with the API by now; imported here so that a worker process never loads it.
      const [{ BULL_BOARD_PATH }, { CONSOLE_PATH }] = await Promise.all([import('../api/bull-board.js'), import('../api/console/plugin.js')]);
      printBanner({
        mode,
        url: running.url!,
        boardPath: BULL_BOARD_PATH,
        consolePath: CONSOLE_PATH,
        tokens: { operator: shown.operator ?? '', read: shown.read },
        made,
        embedded: { redis: providedRedis?.folder, db: db.folder },
        hostIds,
        model,
      });
    }
    logger.info({ mode, url: running.url, hosts: hostIds, config: fleet.source }, 'caelum-scheduler is up');
    closeOnSignals(() => closers.close(), logger);
  } catch (err) {
    await closers.close().catch(() => {});
    // Taken between the check above and the listen: still one line rather than a stack.
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new StartupError(`${(err as Error).message}; set PORT or stop what holds it`);
    throw err;
  }
}

interface Banner {
  mode: ServeMode;
  /** Where the server listens: the printed commands use it, so they work as printed. */
  url: string;
  boardPath: string;
  consolePath: string;
  tokens: { operator: string; read?: string | undefined };
  made: string[];
  /** The folders of the embedded servers, when they run. */
  embedded: { redis?: string | undefined; db?: string | undefined };
  hostIds: string[];
  /** The model the example commands train. */
  model: string;
}

function printBanner({ mode, url, boardPath, consolePath, tokens, made, embedded, hostIds, model }: Banner): void {
  // Links for a browser read better with localhost; commands keep the address the server has.
  const base = url.replace('://[::1]', '://localhost').replace('://127.0.0.1', '://localhost');
  const auth = shellQuote(`authorization: Bearer ${tokens.operator}`);
  const lines = [
    '',
    `caelum-scheduler ${mode} is running`,
    `  API          ${base}/api/health`,
    `  Console      ${base}${consolePath}/   (sign in with the operator or the read token)`,
    `  Bull Board   ${base}${boardPath}   (any user name, the operator token as password)`,
    `  operator token  ${tokens.operator}${made.includes('operator') ? '   (made for this run; set CAELUM_API_TOKEN to choose)' : ''}`,
    ...(tokens.read ? [`  read token      ${tokens.read}${made.includes('read') ? '   (made for this run; set CAELUM_READ_TOKEN to choose)' : ''}`] : []),
    ...(embedded.redis ? [`  Redis        a private redis-server, stopped on exit; its data (AOF) stays in ${embedded.redis}`] : []),
    ...(embedded.db ? [`  Postgres     embedded PGlite (one connection) in ${embedded.db}`] : []),
    `  Workers      ${hostIds.join(', ')}`,
    '',
    '  Try, from another terminal in this folder:',
    `    CAELUM_API_URL=${shellQuote(url)} CAELUM_API_TOKEN=${shellQuote(tokens.operator)} npx caelum-scheduler enqueue training --model ${shellQuote(model)} --wait`,
    '  or with curl:',
    `    curl -s -X POST ${shellQuote(`${url}/api/jobs/training`)} -H ${auth} \\`,
    `         -H 'content-type: application/json' -d ${shellQuote(JSON.stringify({ model }))}`,
    `    curl -s ${shellQuote(`${url}/api/jobs?kind=training`)} -H ${auth}`,
    '',
    '  Ctrl-C stops everything.',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
