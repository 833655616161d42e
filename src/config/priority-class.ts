// Priority classes of training jobs (issue: preemption by priority). A model has one (`normal`
// unless its config says otherwise); a schedule's training, or a job's payload, may set another.
// A waiting job may preempt only running jobs of a strictly lower class.
export const PRIORITY_CLASSES = ['background', 'normal', 'urgent'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

/** Higher is more urgent. */
export const classRank = (c: PriorityClass): number => PRIORITY_CLASSES.indexOf(c);

export function isPriorityClass(value: unknown): value is PriorityClass {
  return (PRIORITY_CLASSES as readonly unknown[]).includes(value);
}
