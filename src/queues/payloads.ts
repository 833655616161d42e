// Payload schemas of each kind, as a client sends them. Every field is data: none of it ever
// becomes a program, a flag or a path; the worker hands the payload to the child as JSON.
import { PRIORITY_CLASSES } from '../config/priority-class.js';
import { z } from 'zod';
import { NAME_PATTERN, SYMBOL_PATTERN, TIMEFRAMES } from '../config/fleet-schema.js';
import type { LoadedFleet } from '../config/load-fleet.js';
import { storable } from '../validation.js';
import type { JobKind } from './kinds.js';

export { TIMEFRAMES };

// The field schemas below are shared by the job payloads, the research pipeline and the API's
// queries, so a field is checked the same way wherever it is sent.
const model = z.string().regex(NAME_PATTERN, 'must be a model name');
export const symbolSchema = z.string().regex(SYMBOL_PATTERN, 'must be an upper-case ticker such as AAPL');
const timeframe = z.enum(TIMEFRAMES);
// Postgres has no year 0: "0000-01-01" is a date zod accepts and Postgres refuses.
export const isoDateSchema = z.iso
  .datetime({ offset: true })
  .or(z.iso.date())
  .refine((d) => !d.startsWith('0000'), 'must be a date from year 0001 on (Postgres has no year 0)');

export const windowSchema = z
  .strictObject({ from: isoDateSchema, to: isoDateSchema })
  .refine((w) => Date.parse(w.from) < Date.parse(w.to), { message: 'from must be before to', path: ['to'] });

/** A model of this fleet, refused with the list of known ones. */
export const knownModel = (fleet: LoadedFleet) =>
  z.string().refine((m) => m in fleet.models, {
    error: (issue) => `unknown model "${String(issue.input)}"; known: ${Object.keys(fleet.models).join(', ')}`,
  });

export const paramsSchema = storable(
  z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'parameter names are identifiers'),
      z.union([z.string().max(256), z.number(), z.boolean()]),
    )
    .refine((p) => Object.keys(p).length <= 64, 'at most 64 parameters'),
);

export const trainingPayload = z.strictObject({
  model,
  params: paramsSchema.default({}),
  datasetWindow: windowSchema.optional(),
  symbols: z.array(symbolSchema).max(200).optional(),
  /** Overrides the model's priority class (config) for this job. */
  priorityClass: z.enum(PRIORITY_CLASSES).optional(),
});

export const backtestPayload = z.strictObject({
  model,
  /** A checkpoint id, or "promoted" for the model's live one; omitted means the latest validated. */
  checkpoint: z.union([z.number().int().positive(), z.literal('promoted')]).optional(),
  symbols: z.array(symbolSchema).min(1).max(200),
  timeframe: timeframe.default('1d'),
  window: windowSchema.optional(),
});

export const dataSyncPayload = z.strictObject({
  symbol: symbolSchema,
  timeframe: timeframe.default('1d'),
  source: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be a source name').default('default'),
  /** The interval to sync; a schedule sets it from its previous fire to this one. */
  window: windowSchema.optional(),
});

export const deployTestPayload = z.strictObject({
  model,
  service: z.enum(['fincoll']).default('fincoll'),
  checkpoint: z.number().int().positive().optional(),
  version: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be a version string').optional(),
  checks: z
    .strictObject({ health: z.boolean().default(true), accuracy: z.boolean().default(true) })
    .prefault({}),
});

export const payloadSchemas = {
  training: trainingPayload,
  backtest: backtestPayload,
  'data-sync': dataSyncPayload,
  'deploy-test': deployTestPayload,
} as const satisfies Record<JobKind, z.ZodType>;

export type PayloadOf<K extends JobKind> = z.output<(typeof payloadSchemas)[K]>;
export type AnyPayload = PayloadOf<JobKind>;

/** Why a job was enqueued: shown in the API and recorded with what it produces. */
export const triggerSchema = z.strictObject({
  reason: z.enum(['api', 'cli', 'schedule', 'pipeline', 'system']),
  by: z.string().max(128),
  at: z.iso.datetime(),
  scheduledFor: z.iso.datetime().optional(),
});
export type Trigger = z.output<typeof triggerSchema>;

/** Where a job stands in a research pipeline (src/pipelines): the summary step aggregates its children. */
export interface PipelineRef {
  id: string;
  role: 'training' | 'backtest' | 'summary';
}

/** What is stored as the BullMQ job's data. */
export interface JobData<K extends JobKind = JobKind> {
  kind: K;
  payload: PayloadOf<K>;
  trigger: Trigger;
  pipeline?: PipelineRef;
}
