// The child-process protocol (DESIGN.md, "Running a job"): one JSON object a line with an
// `event` field on standard output; every other line is log text.
export type ProtocolEvent =
  | { event: 'progress'; [key: string]: unknown }
  | { event: 'checkpoint'; path: string; metrics?: Record<string, number>; [key: string]: unknown }
  | { event: 'result'; metrics?: Record<string, number>; [key: string]: unknown };

const EVENTS = new Set(['progress', 'checkpoint', 'result']);

function jsonObject(line: string): Record<string, unknown> | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function asEvent(value: Record<string, unknown>): ProtocolEvent | undefined {
  const event = (value as { event?: unknown }).event;
  if (typeof event !== 'string' || !EVENTS.has(event)) return undefined;
  if (event === 'checkpoint' && typeof (value as { path?: unknown }).path !== 'string') return undefined;
  return value as ProtocolEvent;
}

/** The event on this line, or undefined when the line is log text. */
export function parseEventLine(line: string): ProtocolEvent | undefined {
  const value = jsonObject(line);
  return value ? asEvent(value) : undefined;
}

/**
 * A warm child's line: an event or the job's end, tagged with a job id; an event without a tag
 * (the running job's, since a warm process runs one job at a time); or log text (undefined).
 */
export type WarmLine =
  | { kind: 'event'; job: string | undefined; event: ProtocolEvent }
  | { kind: 'done'; job: string; ok: true }
  | { kind: 'done'; job: string; ok: false; error: string };

/** What a warm child's line says, read with one JSON parse; undefined for log text. */
export function parseWarmLine(line: string): WarmLine | undefined {
  const value = jsonObject(line);
  if (!value) return undefined;
  if (typeof value.job !== 'string') {
    const event = asEvent(value);
    return event ? { kind: 'event', job: undefined, event } : undefined;
  }
  const { job, ...rest } = value;
  if (rest.event === 'done') {
    if (rest.ok === true) return { kind: 'done', job, ok: true };
    const error = typeof rest.error === 'string' && rest.error.trim() ? rest.error : 'the job failed (its done event gave no error)';
    return { kind: 'done', job, ok: false, error };
  }
  const event = asEvent(rest);
  return event ? { kind: 'event', job, event } : undefined;
}
