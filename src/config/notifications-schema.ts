// The `notifications` part of workers.config.ts: webhook targets, the events each wants, and how
// deliveries are retried. A target's secret signs every delivery; it may be written in the file
// (`secret`) or, so that it is never committed, named as an environment variable (`secretEnv`)
// that the CLI reads at start (resolveNotificationSecrets) and hands down.
import { z } from 'zod';
import { ConfigError } from './config-error.js';

/** What a target may subscribe to (README, "Notifications"). */
export const NOTIFICATION_EVENTS = [
  'job.failed',
  'checkpoint.validated',
  'checkpoint.rejected',
  'checkpoint.promoted',
  'checkpoint.rolled_back',
  'schedule.missed',
  'schedule.failed',
  'data.stale',
  'worker.gone',
  'gpu.unhealthy',
] as const;
export type NotificationEventType = (typeof NOTIFICATION_EVENTS)[number];

export const SECRET_MIN_LENGTH = 16;
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

const secretValue = z
  .string()
  .refine((s) => s.length > 0, { message: 'must not be empty', abort: true })
  .min(SECRET_MIN_LENGTH, `must be at least ${SECRET_MIN_LENGTH} characters`);

const eventName = z.string().refine((e) => e === '*' || (NOTIFICATION_EVENTS as readonly string[]).includes(e), {
  error: (issue) => `unknown event "${String(issue.input)}"; one of ${NOTIFICATION_EVENTS.join(', ')}, or "*"`,
});

const targetSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }),
    /** Event names, or ["*"] for every event. */
    events: z.array(eventName).min(1, 'name at least one event, or "*"').default(['*']),
    secret: secretValue.optional(),
    /** The environment variable that holds the secret, read by the process that delivers. */
    secretEnv: z.string().regex(ENV_NAME, 'must be an environment variable name such as CAELUM_WEBHOOK_SECRET').optional(),
    /** How long one delivery may take before it counts as failed and is retried. */
    timeoutSeconds: z.number().positive().max(120).default(10),
  })
  .superRefine((t, ctx) => {
    if (t.secret === undefined && t.secretEnv === undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'required: set secret or secretEnv' });
    if (t.secret !== undefined && t.secretEnv !== undefined) ctx.addIssue({ code: 'custom', path: ['secretEnv'], message: 'set secret or secretEnv, not both' });
  });

export const notificationsSchema = z
  .strictObject({
    targets: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'a target name must be lower-case letters, digits and dashes'), targetSchema).default({}),
    /** A delivery that fails is tried again this many times in all, waiting backoffSeconds, then twice as long each time. */
    attempts: z.number().int().min(1).max(50).default(10),
    backoffSeconds: z.number().min(0).max(3600).default(5),
    /** How often the notifier looks for new events (failed jobs, checkpoint changes, stale data, lost workers). */
    checkEverySeconds: z.number().positive().max(300).default(5),
  })
  .prefault({});

export type NotificationsConfig = z.output<typeof notificationsSchema>;
export type NotificationTarget = NotificationsConfig['targets'][string];

/** A target's events, with "*" spelled out. */
export function eventsOf(target: Pick<NotificationTarget, 'events'>): Set<NotificationEventType> {
  return new Set(target.events.includes('*') ? NOTIFICATION_EVENTS : (target.events as NotificationEventType[]));
}

/**
 * Each target's secret, from the file or the environment variable it names; a ConfigError naming
 * the field when a variable is unset or its value too short. Only the process that delivers
 * calls this, so that workers (whose environment reaches their jobs) need not hold the secrets.
 */
export function resolveNotificationSecrets(config: NotificationsConfig, env: Record<string, string | undefined>, source: string): Map<string, string> {
  const secrets = new Map<string, string>();
  const problems: { path: string; message: string }[] = [];
  for (const [name, t] of Object.entries(config.targets)) {
    const path = `notifications.targets.${name}.secretEnv`;
    const value = t.secret ?? (t.secretEnv ? env[t.secretEnv] : undefined);
    if (t.secret === undefined && !value) {
      problems.push({ path, message: `environment variable ${t.secretEnv} is not set` });
      continue;
    }
    const checked = secretValue.safeParse(value);
    if (!checked.success) problems.push({ path, message: `${t.secretEnv}: ${checked.error.issues[0]!.message}` });
    else secrets.set(name, checked.data);
  }
  if (problems.length) throw new ConfigError(source, problems);
  return secrets;
}
