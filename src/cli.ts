// The caelum-scheduler command. The environment is parsed here, once, and handed down.
// Each command imports what it needs when it runs, so that a client command (`jobs`, `enqueue`,
// `--help`) loads neither the fleet file nor the server code: it answers in a fraction of the
// time the servers take to load.
import { parseArgs } from 'node:util';
import { ApiError } from './commands/api-client.js';
import { ConfigError, ValidationError } from './errors.js';
import type { Env } from './config/env.js';
import type { ListCommand } from './commands/list-commands.js';

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
  api                  the HTTP API, the console at /ui and Bull Board
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

const listHelp = (command: ListCommand) => async () => {
  const [{ LIST_HELP }, { CLIENT_HELP }] = await Promise.all([import('./commands/list-commands.js'), import('./commands/enqueue.js')]);
  return `${LIST_HELP[command]}\n\n${CLIENT_HELP}`;
};

/** The help of each command; the client commands keep theirs beside their code. */
const COMMAND_HELP: Record<string, () => Promise<string>> = {
  worker: async () => `Usage: caelum-scheduler worker [--host <id>]\n\nRuns the jobs of every pool the host belongs to, on its GPUs and CPU slots. The host id\ncomes from --host, else CAELUM_HOST, else the machine's hostname, and must be in the config.\nWhere nvidia-smi exists it is asked which GPUs are really there.\n\n${ENV_HELP}\n  CAELUM_JOB_LOCK_MS, CAELUM_STALLED_CHECK_MS, CAELUM_HEARTBEAT_MS, CAELUM_KILL_GRACE_MS,\n  CAELUM_SHUTDOWN_GRACE_MS, CAELUM_STARVATION_GUARD_MS   worker timings (see README)`,
  scheduler: async () => `Usage: caelum-scheduler scheduler\n\nFires the schedules of the config into the queues. Run as many as you like: a fire is\nclaimed in Postgres under a unique key, so each fire enqueues exactly once. On start it\ncatches up on fires missed while no scheduler ran (see README).\n\n${ENV_HELP}`,
  api: async () => `Usage: caelum-scheduler api\n\nServes the HTTP API, the console at /ui and Bull Board at /admin/queues. Needs CAELUM_API_TOKEN.\n\n${ENV_HELP}`,
  dev: async () => `Usage: caelum-scheduler dev\n\nRuns the API (and, as they are built, the scheduler and a local worker) in one process.\nWhen REDIS_URL or DATABASE_URL is unset and nothing answers locally, it starts a private\nredis-server or an embedded PGlite database. Missing tokens are made and printed.\n\n${ENV_HELP}`,
  demo: async () => `Usage: caelum-scheduler demo\n\nThe same as dev, with a banner of URLs, tokens and commands to try.\n\n${ENV_HELP}`,
  enqueue: async () => (await import('./commands/enqueue.js')).ENQUEUE_HELP,
  research: async () => (await import('./commands/research.js')).RESEARCH_HELP,
  drain: async () => (await import('./commands/drain.js')).DRAIN_HELP,
  token: async () => (await import('./commands/token.js')).TOKEN_HELP,
  undrain: async () => (await import('./commands/drain.js')).UNDRAIN_HELP,
  jobs: listHelp('jobs'),
  workers: listHelp('workers'),
  schedules: listHelp('schedules'),
  checkpoints: listHelp('checkpoints'),
  migrate: async () => `Usage: caelum-scheduler migrate\n\nApplies the pending migrations to DATABASE_URL (schema CAELUM_DB_SCHEMA) under an advisory\nlock. The api, worker and dev processes do the same when they start.\n\n${ENV_HELP}`,
};

/** The commands that start servers (and load the fleet file). */
const SERVERS = new Set(['api', 'dev', 'demo', 'scheduler', 'worker', 'migrate']);

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
    process.stdout.write((await COMMAND_HELP[command]!()) + '\n');
    return 0;
  }
  // Offline and needing no configuration: a broken environment must not stop making a token.
  if (command === 'token') return (await import('./commands/token.js')).tokenCommand(rest, { stdin: process.stdin, stdout: process.stdout });
  const { parseEnv } = await import('./config/env.js');
  const env = parseEnv(process.env);
  if (SERVERS.has(command)) return runServer(command, rest, env);
  switch (command) {
    case 'enqueue':
      return (await import('./commands/enqueue.js')).enqueueCommand(rest, env);
    case 'research':
      return (await import('./commands/research.js')).researchCommand(rest, env);
    case 'jobs':
    case 'workers':
    case 'schedules':
    case 'checkpoints':
      return (await import('./commands/list-commands.js')).listCommand(command, rest, env);
    case 'drain':
    case 'undrain':
      return (await import('./commands/drain.js')).drainCommand(command, rest, env);
  }
  return 2;
}

async function runServer(command: string, rest: string[], env: Env): Promise<number> {
  const { createLogger } = await import('./logger.js');
  const logger = createLogger(env.logLevel);
  if (command === 'migrate') {
    await (await import('./commands/migrate.js')).migrateCommand(env, logger);
    return 0;
  }
  const { serve } = await import('./commands/serve.js');
  if (command === 'worker') {
    const host = parseWorkerArgs(rest);
    await serve('worker', { env, logger, processEnv: process.env, ...(host ? { host } : {}) });
    return -1; // keeps running until a signal
  }
  if (rest.length > 0) throw new ValidationError(`${command} takes no arguments (got ${rest.join(' ')})`);
  await serve(command as 'api' | 'dev' | 'demo' | 'scheduler', { env, logger, processEnv: process.env });
  return -1;
}

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * Errors whose message says it all, printed without a stack: the client commands' own, and, for
 * the commands that start servers, those of starting, imported only then (a client command
 * never loads their modules).
 */
async function expectedErrors(command: string | undefined): Promise<ErrorClass[]> {
  const client: ErrorClass[] = [ConfigError, ValidationError, ApiError];
  if (!command || !SERVERS.has(command)) return client;
  const [start, redis, lock, migrate] = await Promise.all([
    import('./start.js'),
    import('./dev/embedded-redis.js'),
    import('./dev/pid-lock.js'),
    import('./registry/migrate.js'),
  ]);
  return [...client, start.StartupError, redis.MissingRedisError, lock.FolderLockedError, migrate.SchemaAheadError];
}

const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  async (err: unknown) => {
    if ((await expectedErrors(argv[0])).some((E) => err instanceof E)) {
      process.stderr.write(`caelum-scheduler: ${(err as Error).message}\n`);
      process.exit(err instanceof ValidationError ? 2 : 1);
    }
    process.stderr.write(`caelum-scheduler: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
