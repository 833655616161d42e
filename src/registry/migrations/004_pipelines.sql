-- Research pipelines (train, then backtest across symbols in parallel, then summarise) and
-- comparisons (a validated checkpoint backtested against the promoted one before promotion).
create table pipelines (
  id               text primary key,
  kind             text not null check (kind in ('research', 'comparison')),
  model            text not null,
  spec             jsonb not null,
  training_job_id  text not null,
  checkpoint_id    bigint references checkpoints (id),
  summary_job_id   text,
  summary          jsonb,
  created_by       text not null,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now()
);
create index pipelines_created on pipelines (created_at desc);
create index backtest_results_checkpoint on backtest_results (checkpoint_id);
