// The names of the dispatch policies (what each does: src/workers/policy/snapshot.ts), here so the
// environment schema can validate CAELUM_DISPATCH_POLICY without importing the workers.
export const DISPATCH_POLICIES = ['none', 'host', 'pool', 'backfill'] as const;
export type DispatchPolicy = (typeof DISPATCH_POLICIES)[number];
