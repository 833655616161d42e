// The checkpoint state machine: one table of the steps a checkpoint may take, and the typed error
// for one it may not. Pure. The lifecycle (lifecycle.ts) has the registry write a step only when
// the row, locked, is in one of the statuses this table allows, so a race cannot slip an illegal
// change past the check.
//
//   registered -> validating -> validated -> promoted -> superseded | rolled_back
//                            \-> rejected    superseded -> promoted (again, or as a rollback's target)
//   validated | superseded -> rejected, when its file no longer matches its sha256 (checked
//     before every promotion); a verdict itself is only ever given from validating
//   every status but promoted -> pruned (its file deleted; a pruned checkpoint takes no more steps)
import { ConflictError } from '../errors.js';
import { CHECKPOINT_STATUSES, type Checkpoint, type CheckpointStatus } from '../registry/checkpoints.js';

/** A status, or `pruned`: a mark beside the status (pruned_at) that ends a checkpoint's life. */
export type Step = CheckpointStatus | 'pruned';

export const TRANSITIONS: { readonly [S in CheckpointStatus]: readonly Step[] } = {
  registered: ['validating', 'pruned'],
  validating: ['validated', 'rejected', 'pruned'],
  validated: ['promoted', 'rejected', 'pruned'],
  promoted: ['superseded', 'rolled_back'],
  superseded: ['promoted', 'rejected', 'pruned'],
  rolled_back: ['pruned'],
  rejected: ['pruned'],
};

type Position = Pick<Checkpoint, 'id' | 'status' | 'prunedAt'>;

export const allowed = (from: CheckpointStatus, to: Step): boolean => TRANSITIONS[from].includes(to);

/** The statuses `to` may be reached from in one step: what a guarded write accepts. */
export const sourcesOf = (to: Step): CheckpointStatus[] => CHECKPOINT_STATUSES.filter((s) => allowed(s, to));

/** Whether `status` lies beyond `from`: reachable from it in one step or more. */
export function isPast(status: CheckpointStatus, from: CheckpointStatus): boolean {
  const seen = new Set<Step>();
  const todo: Step[] = [...TRANSITIONS[from]];
  for (let s = todo.pop(); s !== undefined; s = todo.pop()) {
    if (s === status) return true;
    if (s === 'pruned' || seen.has(s)) continue;
    seen.add(s);
    todo.push(...TRANSITIONS[s]);
  }
  return false;
}

/** Still waiting for its verdict: validating, or not yet that far. */
export const awaitsVerdict = (status: CheckpointStatus): boolean => !isPast(status, 'validating');

function refusal(c: Position, to: Step): string {
  if (c.prunedAt) return `checkpoint ${c.id} was pruned; it cannot ${to === 'promoted' ? 'be promoted' : `become ${to}`}`;
  if (to === 'promoted') return `checkpoint ${c.id} is ${c.status}; only a validated checkpoint can be promoted`;
  return `checkpoint ${c.id} is ${c.status}; it cannot become ${to}`;
}

/** A step the table does not allow; a ConflictError, so the API answers 409. */
export class IllegalTransitionError extends ConflictError {
  override name = 'IllegalTransitionError';
  readonly checkpointId: number;
  readonly from: CheckpointStatus;
  readonly pruned: boolean;

  constructor(
    c: Position,
    readonly to: Step,
  ) {
    super(refusal(c, to));
    this.checkpointId = c.id;
    this.from = c.status;
    this.pruned = c.prunedAt !== null;
  }
}

/** Throws IllegalTransitionError unless `c` may take the step `to` now. */
export function assertTransition(c: Position, to: Step): void {
  if (c.prunedAt || !allowed(c.status, to)) throw new IllegalTransitionError(c, to);
}
