// Request schemas of the API routes. The routes validate with them and the OpenAPI document at
// /docs is generated from them, so what the document says is what the server accepts.
import { z } from 'zod';
import type { LoadedFleet } from '../config/load-fleet.js';
import { JOB_STATES } from '../queues/jobs.js';
import { JOB_KINDS } from '../queues/kinds.js';
import { knownModel as modelName } from '../queues/payloads.js';
import { CHECKPOINT_STATUSES } from '../registry/checkpoints.js';
import { storable } from '../validation.js';

/** The longest a feed request may be held open, in seconds. */
export const FEED_MAX_WAIT_SECONDS = 30;

export const jobListQuery = z.strictObject({
  kind: z.enum(JOB_KINDS).optional(),
  state: z.enum(JOB_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).max(100_000).default(0),
});

export { modelName };

export const checkpointListQuery = (fleet: LoadedFleet) =>
  z.strictObject({
    model: modelName(fleet).optional(),
    status: z.enum(CHECKPOINT_STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
    offset: z.coerce.number().int().min(0).default(0),
  });

/** What the feed answers (the route builds it; /docs documents it). */
export const feedResponse = z.object({
  checkpoints: z.array(
    z.object({
      id: z.number().int(),
      model: z.string(),
      label: z.string(),
      version: z.number().int(),
      path: z.string(),
      sha256: z.string(),
      sizeBytes: z.number().int(),
      metrics: z.record(z.string(), z.unknown()),
      status: z.enum(CHECKPOINT_STATUSES),
      seq: z.number().int(),
      validatedAt: z.iso.datetime().describe('when validation passed: now minus this is how fresh the checkpoint is'),
    }),
  ),
  cursor: z.string().describe('send it back as `after` for the next page'),
});
export type FeedEntry = z.infer<typeof feedResponse>['checkpoints'][number];

export const feedQuery = (fleet: LoadedFleet) =>
  z.strictObject({
    model: modelName(fleet).optional(),
    after: z
      .string()
      .regex(/^(0|[1-9][0-9]{0,15})$/, 'the cursor is the "cursor" of the previous answer (a whole number)')
      .default('0')
      .transform(Number),
    wait: z.coerce.number().int().min(0).max(FEED_MAX_WAIT_SECONDS, `wait is at most ${FEED_MAX_WAIT_SECONDS} seconds`).default(0),
  });

export const checkpointIdParam = z.object({
  id: z.string().regex(/^[1-9][0-9]{0,15}$/, 'a checkpoint id is a positive integer').transform(Number),
});

export const loadedBody = z.strictObject({
  instance: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must name the FinColl instance'),
  details: storable(z.record(z.string(), z.unknown())).optional(),
});

export const reasonBody = z.strictObject({ reason: storable(z.string().min(1).max(500)).optional() }).default({});

export const scheduleHistoryQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(50) });

export const resumeBody = z.strictObject({ catchUp: z.boolean().default(false) }).default({ catchUp: false });

export const triggerBody = z.strictObject({ force: z.boolean().default(false) }).default({ force: false });

/** The longest drain reason: every job waiting on the host quotes it in its `waitingFor`. */
export const DRAIN_REASON_MAX_LENGTH = 200;
const gpuIndex = z.number().int().min(0).describe('one GPU of the host, by index; without it, the whole host');

export const drainBody = z.strictObject({
  reason: z
    .string()
    .trim()
    .min(1, 'say why (waiting jobs show it)')
    .max(DRAIN_REASON_MAX_LENGTH)
    .regex(/^[^\p{Cc}\p{Cs}]*$/u, 'must be one line of text without control characters'),
  gpu: gpuIndex.optional(),
  now: z.boolean().default(false).describe('hand the running jobs it covers back to their queues (no attempt used) instead of letting them finish'),
});

export const undrainBody = z.strictObject({ gpu: gpuIndex.optional() }).default({});

/** How far back the failures list looks when no `since` is given: "since yesterday". */
export const FAILURES_DEFAULT_HOURS = 24;

export const failureListQuery = z.strictObject({
  since: z.iso
    .datetime({ offset: true })
    .optional()
    .describe(`ISO time; default ${FAILURES_DEFAULT_HOURS} hours ago`),
  kind: z.enum(JOB_KINDS).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
