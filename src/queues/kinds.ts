// The four kinds of work and the order in which a host serves them (DESIGN.md, "Queues and
// placement"): the source documents' Celery priorities, data sync 10, training 5, backtest 3;
// deploy tests ride with training.
export const JOB_KINDS = ['training', 'backtest', 'data-sync', 'deploy-test'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const SERVING_PRIORITY: Record<JobKind, number> = {
  'data-sync': 10,
  training: 5,
  'deploy-test': 5,
  backtest: 3,
};

export function isJobKind(value: string): value is JobKind {
  return (JOB_KINDS as readonly string[]).includes(value);
}
