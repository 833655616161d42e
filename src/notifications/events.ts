// What a webhook receives: one JSON object per event, with a `text` line that a Slack or
// Mattermost incoming webhook shows as it is, and the facts behind it in `details`. The `id` is
// the event's idempotency key: derived only from what happened (a job id and when it failed, a
// checkpoint event's row id), so every notifier process that notices the same thing makes the
// same id, and the delivery queue keeps one job per (target, id).
import type { NotificationEventType } from '../config/notifications-schema.js';

export interface NotificationEvent {
  id: string;
  event: NotificationEventType;
  /** When it happened (or was noticed), ISO 8601. */
  at: string;
  text: string;
  details: Record<string, unknown>;
}

/** The idempotency key of an event: its type and the facts that make it this one. */
export const eventId = (type: NotificationEventType, ...parts: (string | number)[]): string => [type, ...parts].join(':');

/**
 * Text from the service's own records (a failure reason, an actor) is data, not markup: Slack and
 * Mattermost read `<...>` as links and mentions (<!channel>), so those characters are escaped the
 * way Slack documents, and a reason is cut to one line of reasonable length.
 */
export function plain(value: unknown, max = 300): string {
  const line = String(value ?? '').split('\n').find((l) => l.trim() !== '') ?? '';
  const cut = line.length > max ? `${line.slice(0, max - 1)}…` : line;
  return cut.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function makeEvent(type: NotificationEventType, idParts: (string | number)[], at: Date | string | number, text: string, details: Record<string, unknown>): NotificationEvent {
  return { id: eventId(type, ...idParts), event: type, at: new Date(at).toISOString(), text, details };
}
