// The zod schema of workers.config.ts: hosts, pools, models, job kinds and schedules. Fields that
// point at each other (a model's pool, a schedule's model) are checked in fleet-rules.ts.
import { z } from 'zod';
import { gpuHealthSchema, hostGpuHealthSchema } from './gpu-health-schema.js';
import { notificationsSchema } from './notifications-schema.js';
import { PRIORITY_CLASSES } from './priority-class.js';

/** Names (hosts, pools, models, schedules) become parts of queue names and job ids: this long at most. */
export const NAME_MAX_LENGTH = 63;
export const NAME_PATTERN = new RegExp(`^[a-z0-9][a-z0-9-]{0,${NAME_MAX_LENGTH - 1}}$`);
/** A ticker as payloads, pipelines and the config write it: AAPL, BRK.B, ^VIX. */
export const SYMBOL_PATTERN = /^[A-Z0-9][A-Z0-9.^=-]{0,15}$/;
export const TIMEFRAMES = ['1m', '5m', '15m', '30m', '1h', '4h', '1d', '1w'] as const;
const name = (what: string) =>
  z.string().regex(NAME_PATTERN, `${what} must be lower-case letters, digits and dashes`);

const gpuSchema = z.strictObject({
  index: z.number().int().min(0),
  name: z.string().min(1),
  memoryMiB: z.number().int().positive(),
  /** Set for real GPUs when known; nvidia-smi discovery fills it in otherwise. */
  uuid: z.string().min(1).optional(),
});

const hostSchema = z.strictObject({
  description: z.string().optional(),
  gpus: z.array(gpuSchema).default([]),
  /** How many CPU jobs (backtests, data syncs, deploy tests) the host runs at once. */
  cpuSlots: z.number().int().min(0).default(2),
  labels: z.array(z.string().min(1)).default([]),
  /** This host's own GPU health settings, over the fleet's `gpuHealth`. */
  gpuHealth: hostGpuHealthSchema,
});

/** A program and its arguments. Never a shell string: nothing is ever interpreted by a shell. */
const argv = z
  .array(z.string().min(1, 'an argument must not be empty'))
  .min(1, 'must name a program and its arguments');

/**
 * How a command's jobs meet their processes. `cold` (the default): a new process per job, so each
 * job starts clean and its memory (GPU memory too) is released when it exits. `warm`: one
 * long-lived process per slot takes job after job on standard input (see "Warm runners" in the
 * README), paying its interpreter and imports once; it is replaced after `maxJobs` jobs, above
 * `maxRssMiB`, after `idleSeconds` without a job, and whenever a job is cancelled, times out or
 * crashes it.
 */
const runnerSchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('cold') }),
  z.strictObject({
    mode: z.literal('warm'),
    maxJobs: z.number().int().min(1).max(1_000_000).default(1000),
    maxRssMiB: z.number().int().min(16).max(1_048_576).default(2048),
    idleSeconds: z.number().positive().max(7 * 24 * 3600).default(300),
  }),
]);
export type RunnerConfig = z.infer<typeof runnerSchema>;

const commandSchema = z.strictObject({
  command: argv,
  runner: runnerSchema.default({ mode: 'cold' }),
  /** Working directory of the child, relative to the config file. */
  cwd: z.string().min(1).optional(),
  timeoutSeconds: z.number().positive().max(7 * 24 * 3600),
  /**
   * When the job must stop without being cancelled (shutdown, drain now, preemption): how long
   * the child has after SIGTERM to write a checkpoint and exit before SIGKILL. Unset: the kill
   * grace (CAELUM_KILL_GRACE_MS).
   */
  stopGraceSeconds: z.number().positive().max(3600).optional(),
  attempts: z.number().int().min(1).max(20).default(3),
  /** First retry delay; each further retry waits twice as long. */
  backoffSeconds: z.number().min(0).max(24 * 3600).default(10),
});

const thresholdSchema = z
  .strictObject({ min: z.number().optional(), max: z.number().optional() })
  .refine((t) => t.min !== undefined || t.max !== undefined, 'a threshold needs min or max');

/**
 * A deploy test: start the candidate service (FinColl) on a free test port with the checkpoint,
 * wait for its health URL, run the accuracy check against it, stop it. The health defaults are
 * the source documents' FinColl values (5 s timeout, 3 retries).
 */
const deployTestSchema = z.strictObject({
  service: commandSchema.extend({
    healthPath: z.string().regex(/^\/[A-Za-z0-9/_.-]*$/, 'must be a URL path such as /health').default('/health'),
  }),
  accuracy: commandSchema,
  health: z
    .strictObject({
      intervalSeconds: z.number().positive().default(1),
      timeoutSeconds: z.number().positive().default(5),
      retries: z.number().int().min(0).default(3),
      /** Failures while the service starts (loading the model) do not count. */
      startPeriodSeconds: z.number().min(0).default(10),
    })
    .prefault({}),
});

const modelSchema = z.strictObject({
  description: z.string().optional(),
  pool: name('a pool name'),
  gpusPerRun: z.number().int().min(0).max(64).default(1),
  /** Its trainings' class: a waiting job may preempt running ones of a lower class (see Workers). */
  priorityClass: z.enum(PRIORITY_CLASSES).default('normal'),
  train: commandSchema,
  validate: commandSchema,
  /** Metrics a checkpoint must clear to be validated, e.g. { val_accuracy: { min: 0.6 } }. */
  thresholds: z.record(z.string().min(1), thresholdSchema).default({}),
  /** How much worse than the promoted checkpoint a candidate may be, as a fraction. */
  maxRegression: z.number().min(0).max(1).default(0.05),
  checkpointDir: z.string().min(1),
  retention: z.number().int().min(1).default(5),
  /** The major part of checkpoint labels (<model>-v<major>.<n>.0); bump it with the architecture. */
  versionMajor: z.number().int().min(0).default(1),
  /** How a new checkpoint is validated: the validate command, or a deploy test of the service. */
  validation: z.enum(['command', 'deploy-test']).default('command'),
  deployTest: deployTestSchema.optional(),
  /**
   * Promote a checkpoint as soon as it is validated (with compareBeforePromotion: once its
   * backtests are not worse than the promoted checkpoint's).
   */
  autoPromote: z.boolean().default(false),
  /** Backtest a validated checkpoint against the promoted one on these symbols before promotion. */
  compareBeforePromotion: z
    .strictObject({
      symbols: z.array(z.string().regex(SYMBOL_PATTERN, 'must be an upper-case ticker')).min(1),
      timeframe: z.enum(TIMEFRAMES).default('1d'),
    })
    .optional(),
  /**
   * Train only on fresh market data: at enqueue, symbols whose last sync at `timeframe` is older
   * than `maxAgeHours` (or missing) are synced first, as children of the training job (a flow).
   */
  freshData: z
    .strictObject({ timeframe: z.enum(TIMEFRAMES), maxAgeHours: z.number().positive() })
    .optional(),
  symbols: z.array(z.string().min(1)).default([]),
});

const cpuKindSchema = commandSchema.extend({ pool: name('a pool name') });

const overlapSchema = z.enum(['skip', 'buffer-one', 'allow', 'cancel-previous']);

const scheduleSchema = z.strictObject({
  description: z.string().optional(),
  /** Omit for an on-demand schedule that only fires when triggered. */
  cron: z.string().min(1).optional(),
  timezone: z.string().min(1),
  enqueue: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('training'),
      model: name('a model name'),
      params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
      /** Overrides the model's priority class for this schedule's trainings. */
      priorityClass: z.enum(PRIORITY_CLASSES).optional(),
    }),
    z.strictObject({
      kind: z.literal('data-sync'),
      symbols: z.array(z.string().min(1)).min(1),
      timeframe: z.string().min(1),
      source: z.string().min(1).default('default'),
    }),
  ]),
  overlap: overlapSchema.default('skip'),
  catchUp: z
    .strictObject({
      windowSeconds: z.number().int().min(0).default(6 * 3600),
      mode: z.enum(['latest', 'all']).default('latest'),
      max: z.number().int().min(1).default(10),
    })
    .prefault({}),
});

export const fleetSchema = z.strictObject({
  hosts: z.record(name('a host id'), hostSchema),
  pools: z.record(name('a pool name'), z.array(name('a host id')).min(1, 'a pool needs at least one host')),
  models: z.record(name('a model name'), modelSchema),
  backtest: cpuKindSchema,
  dataSync: cpuKindSchema.extend({
    /** The lock of a (symbol, timeframe) sync: 300 s in the source documents, renewed every third. */
    lockTtlSeconds: z.number().min(1).default(300),
    /** A holder stops renewing (and its sync is ended) after this long. */
    maxLockHoldSeconds: z.number().min(1).default(3 * 3600),
  }),
  schedules: z.record(name('a schedule name'), scheduleSchema).default({}),
  /** When a GPU nvidia-smi reports is not leased: heat, XIDs (gpu-health-schema.ts). */
  gpuHealth: gpuHealthSchema,
  /** Webhooks told of failures and checkpoint changes (notifications-schema.ts). */
  notifications: notificationsSchema,
});

export type FleetInput = z.input<typeof fleetSchema>;
export type Fleet = z.output<typeof fleetSchema>;
export type HostConfig = Fleet['hosts'][string];
export type GpuConfig = HostConfig['gpus'][number];
export type ModelConfig = Fleet['models'][string];
export type CommandConfig = ModelConfig['train'];
export type ScheduleConfig = Fleet['schedules'][string];
export type DeployTestConfig = NonNullable<ModelConfig['deployTest']>;
