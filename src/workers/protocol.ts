// The child-process protocol (DESIGN.md, "Running a job"): one JSON object a line with an
// `event` field on standard output; every other line is log text.
export type ProtocolEvent =
  | { event: 'progress'; [key: string]: unknown }
  | { event: 'checkpoint'; path: string; metrics?: Record<string, number>; [key: string]: unknown }
  | { event: 'result'; metrics?: Record<string, number>; [key: string]: unknown };

const EVENTS = new Set(['progress', 'checkpoint', 'result']);

/** The event on this line, or undefined when the line is log text. */
export function parseEventLine(line: string): ProtocolEvent | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const event = (value as { event?: unknown }).event;
  if (typeof event !== 'string' || !EVENTS.has(event)) return undefined;
  if (event === 'checkpoint' && typeof (value as { path?: unknown }).path !== 'string') return undefined;
  return value as ProtocolEvent;
}
