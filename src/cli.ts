// The caelum-scheduler command. The environment is parsed here, once, and handed down.
import { parseArgs } from 'node:util';
import { CLIENT_HELP, enqueueCommand, ENQUEUE_HELP } from './commands/enqueue.js';
import { LIST_COMMANDS, LIST_HELP, listCommand } from './commands/list-commands.js';
import { ApiError } from './commands/api-client.js';
import { DRAIN_HELP, drainCommand, UNDRAIN_HELP } from './commands/drain.js';
import { RESEARCH_HELP, researchCommand } from './commands/research.js';
import { serve } from './commands/serve.js';
import { migrateCommand } from './commands/migrate.js';
import { TOKEN_HELP, tokenCommand } from './commands/token.js';
import { parseEnv } from './config/env.js';
import { ConfigError, ValidationError } from './errors.js';
import { createLogger } from './logger.js';
import { StartupError } from './start.js';
import { MissingRedisError } from './dev/embedded-redis.js';
import { FolderLockedError } from './dev/pid-lock.js';
import { SchemaAheadError } from './registry/migrate.js';

const ENV_HELP = `Environment (each secret also as <NAME>_FILE, a file holding it):
  REDIS_URL          Redis (default redis://127.0.0.1:6379; rediss:// for TLS)
  REDIS_USERNAME, REDIS_PASSWORD   the Redis ACL user and its password
  REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE   TLS: the CA, a client certificate
  REDIS_SENTINELS, REDIS_SENTINEL_NAME   instead of REDIS_URL: host:port,… of the sentinels, and
                     the primary's name (REDIS_SENTINEL_PASSWORD, REDIS_SENTINEL_TLS, REDIS_TLS)
  CAELUM_REDIS_MIN_REPLICAS   acknowledge an enqueue once this many replicas have it (default 0)
  DATABASE_URL       PostgreSQL (default postgres://postgres@127.0.0.1:5432/caelum;
                     ?sslmode=verify-full&sslrootcert=… for TLS); DATABASE_PASSWORD
  CAELUM_CONFIG      the fleet file (default workers.config.ts)
  CAELUM_HOST        this machine's host id (default its hostname)
  CAELUM_PREFIX      Redis key prefix of the queues (default caelum)
  CAELUM_DB_SCHEMA   Postgres schema of the tables (default public)
  CAELUM_DATA_DIR    dev and demo: their PGlite database and private Redis's data, each folder
                     locked by one process; jobs' outputs (default .caelum)
  PORT, BIND_ADDRESS where the API listens (default 3000 on 127.0.0.1)
  CAELUM_METRICS_PORT where worker and scheduler processes serve /metrics (default 9464 and 9465)
  CAELUM_API_TOKEN   operator token, named "operator" (16+ characters; "api" needs it or a tokens file)
  CAELUM_API_URL     where the CLI finds the API (default http://127.0.0.1:$PORT)
  CAELUM_READ_TOKEN  read-only token, named "reader"
  CAELUM_TOKENS_FILE named tokens with scopes, stored hashed (caelum-scheduler token --help)
  LOG_LEVEL          fatal|error|warn|info|debug|trace|silent (default info)`;

const HELP = `Usage: caelum-scheduler <command> [options]

Commands:
  api                  the HTTP API and Bull Board
  worker --host <id>   the worker of one host: runs the jobs its pools may run, on its GPUs
  scheduler            fires the cron schedules (any number may run: each fire enqueues once)
  dev                  everything in one process, for a laptop
  demo                 like dev; starts a private Redis or an embedded database when none runs
  enqueue <kind> ...   add a job through the API; --wait follows it (caelum-scheduler enqueue --help)
  research ...         train, backtest across symbols, summarise (caelum-scheduler research --help)
  jobs, workers, schedules, checkpoints   tables from the API (--json for scripts)
  drain <host> --reason <text>   start no new job on a host (or --gpu N); --now hands its jobs back
  undrain <host>       put a drained host (or --gpu N) back in service
  migrate              apply pending database migrations (every process also does on start)
  token new|hash       make an API token and its tokens-file entry (caelum-scheduler token --help)
  help                 this text

${ENV_HELP}`;

const COMMAND_HELP: Record<string, string> = {
  worker: `Usage: caelum-scheduler worker [--host <id>]\n\nRuns the jobs of every pool the host belongs to, on its GPUs and CPU slots. The host id\ncomes from --host, else CAELUM_HOST, else the machine's hostname, and must be in the config.\nWhere nvidia-smi exists it is asked which GPUs are really there.\n\n${ENV_HELP}\n  CAELUM_JOB_LOCK_MS, CAELUM_STALLED_CHECK_MS, CAELUM_HEARTBEAT_MS, CAELUM_KILL_GRACE_MS,\n  CAELUM_SHUTDOWN_GRACE_MS, CAELUM_STARVATION_GUARD_MS   worker timings (see README)`,
  scheduler: `Usage: caelum-scheduler scheduler\n\nFires the schedules of the config into the queues. Run as many as you like: a fire is\nclaimed in Postgres under a unique key, so each fire enqueues exactly once. On start it\ncatches up on fires missed while no scheduler ran (see README).\n\n${ENV_HELP}`,
  api: `Usage: caelum-scheduler api\n\nServes the HTTP API, Bull Board at /admin/queues. Needs CAELUM_API_TOKEN.\n\n${ENV_HELP}`,
  dev: `Usage: caelum-scheduler dev\n\nRuns the API (and, as they are built, the scheduler and a local worker) in one process.\nWhen REDIS_URL or DATABASE_URL is unset and nothing answers locally, it starts a private\nredis-server or an embedded PGlite database. Missing tokens are made and printed.\n\n${ENV_HELP}`,
  demo: `Usage: caelum-scheduler demo\n\nThe same as dev, with a banner of URLs, tokens and commands to try.\n\n${ENV_HELP}`,
  enqueue: ENQUEUE_HELP,
  research: RESEARCH_HELP,
  drain: DRAIN_HELP,
  token: TOKEN_HELP,
  undrain: UNDRAIN_HELP,
  ...Object.fromEntries(LIST_COMMANDS.map((c) => [c, `${LIST_HELP[c]}\n\n${CLIENT_HELP}`])),
  migrate: `Usage: caelum-scheduler migrate\n\nApplies the pending migrations to DATABASE_URL (schema CAELUM_DB_SCHEMA) under an advisory\nlock. The api, worker and dev processes do the same when they start.\n\n${ENV_HELP}`,
};

function parseWorkerArgs(args: string[]): string | undefined {
  try {
    const { values } = parseArgs({ args, options: { host: { type: 'string' } }, strict: true });
    return values.host;
  } catch (err) {
    throw new ValidationError(err instanceof Error ? err.message : String(err));
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  if (!(command in COMMAND_HELP)) {
    process.stderr.write(`caelum-scheduler: unknown command "${command}"\n\n${HELP}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(COMMAND_HELP[command] + '\n');
    return 0;
  }
  // Offline and needing no configuration: a broken environment must not stop making a token.
  if (command === 'token') return tokenCommand(rest, { stdin: process.stdin, stdout: process.stdout });
  const env = parseEnv(process.env);
  const logger = createLogger(env.logLevel);
  switch (command) {
    case 'api':
    case 'dev':
    case 'demo':
    case 'scheduler':
      if (rest.length > 0) throw new ValidationError(`${command} takes no arguments (got ${rest.join(' ')})`);
      await serve(command, { env, logger, processEnv: process.env });
      return -1; // keeps running until a signal
    case 'worker': {
      const host = parseWorkerArgs(rest);
      await serve('worker', { env, logger, processEnv: process.env, ...(host ? { host } : {}) });
      return -1;
    }
    case 'enqueue':
      return enqueueCommand(rest, env);
    case 'research':
      return researchCommand(rest, env);
    case 'jobs':
    case 'workers':
    case 'schedules':
    case 'checkpoints':
      return listCommand(command, rest, env);
    case 'drain':
    case 'undrain':
      return drainCommand(command, rest, env);
    case 'migrate':
      await migrateCommand(env, logger);
      return 0;
  }
  return 2;
}

const EXPECTED = [ConfigError, ValidationError, StartupError, MissingRedisError, FolderLockedError, SchemaAheadError, ApiError];

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (EXPECTED.some((E) => err instanceof E)) {
      process.stderr.write(`caelum-scheduler: ${(err as Error).message}\n`);
      process.exit(err instanceof ValidationError ? 2 : 1);
    }
    process.stderr.write(`caelum-scheduler: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
