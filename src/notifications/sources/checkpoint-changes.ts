// checkpoint.validated, .rejected, .promoted, .rolled_back: read from the checkpoints' status
// history in Postgres, which every change writes in the transaction that makes it. The id is the
// history row's, so a promotion, a later supersession and a second promotion are three events.
import type { CheckpointChange, CheckpointStatus } from '../../registry/checkpoints.js';
import { makeEvent, plain, type NotificationEvent } from '../events.js';
import type { NotificationSource } from './source.js';

const TOLD: Record<string, 'checkpoint.validated' | 'checkpoint.rejected' | 'checkpoint.promoted' | 'checkpoint.rolled_back'> = {
  validated: 'checkpoint.validated',
  rejected: 'checkpoint.rejected',
  promoted: 'checkpoint.promoted',
  rolled_back: 'checkpoint.rolled_back',
};

function metricsOf(details: unknown): Record<string, unknown> {
  const metrics = details && typeof details === 'object' && 'metrics' in details ? details.metrics : undefined;
  return metrics && typeof metrics === 'object' ? (metrics as Record<string, unknown>) : {};
}

function textOf(c: CheckpointChange): string {
  const name = `${c.model} checkpoint ${c.label} (#${c.checkpointId})`;
  switch (c.toStatus) {
    case 'validated': {
      const shown = Object.entries(metricsOf(c.details))
        .filter(([, v]) => typeof v === 'number')
        .slice(0, 4)
        .map(([k, v]) => `${plain(k, 40)} ${Number(v).toPrecision(3)}`);
      return `:white_check_mark: ${name} validated${shown.length ? `: ${shown.join(', ')}` : ''}`;
    }
    case 'rejected':
      return `:no_entry: ${name} rejected: ${plain(c.reason)}`;
    case 'promoted':
      return `:rocket: ${name} promoted by ${plain(c.actor, 80)}: ${plain(c.reason)}`;
    default: {
      const to = c.details && typeof c.details === 'object' && 'rolledBackTo' in c.details ? ` to #${String(c.details.rolledBackTo)}` : '';
      return `:rewind: ${name} rolled back${to} by ${plain(c.actor, 80)}: ${plain(c.reason)}`;
    }
  }
}

export const checkpointChanges: NotificationSource = {
  name: 'checkpoint-changes',
  async read(ctx, sinceMs) {
    const changes = await ctx.registry.checkpoints.changesSince(new Date(sinceMs), Object.keys(TOLD) as CheckpointStatus[]);
    return changes.map(
      (c): NotificationEvent =>
        makeEvent(TOLD[c.toStatus]!, [c.eventId], c.at, textOf(c), {
          checkpointId: c.checkpointId,
          model: c.model,
          label: c.label,
          version: c.version,
          from: c.fromStatus,
          to: c.toStatus,
          actor: c.actor,
          reason: c.reason,
          ...(c.details && typeof c.details === 'object' ? { record: c.details } : {}),
        }),
    );
  },
};
