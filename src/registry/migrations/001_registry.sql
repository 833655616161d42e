-- The checkpoint registry: checkpoints and their status history, FinColl's loads, deployment
-- tests and validations, and backtest results.

create table checkpoints (
  id                bigserial primary key,
  model             text not null,
  version           integer not null,
  label             text not null,
  path              text not null,
  size_bytes        bigint not null,
  sha256            text not null,
  metrics           jsonb not null default '{}',
  validation_metrics jsonb,
  training_job_id   text not null unique,
  trigger           jsonb not null,
  status            text not null check (status in
                      ('registered', 'validating', 'validated', 'promoted', 'superseded', 'rolled_back', 'rejected')),
  rejection_reasons jsonb,
  feed_seq          bigint unique,
  pruned_at         timestamptz,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  unique (model, version)
);
create index checkpoints_model_version on checkpoints (model, version desc);
create index checkpoints_feed on checkpoints (feed_seq) where feed_seq is not null;
-- At most one promoted checkpoint per model.
create unique index checkpoints_one_promoted on checkpoints (model) where status = 'promoted';

create sequence checkpoint_feed_seq;

create table checkpoint_events (
  id            bigserial primary key,
  checkpoint_id bigint not null references checkpoints (id),
  from_status   text,
  to_status     text not null,
  actor         text not null,
  reason        text,
  details       jsonb,
  created_at    timestamptz not null default now()
);
create index checkpoint_events_checkpoint on checkpoint_events (checkpoint_id, id);

create table checkpoint_loads (
  id            bigserial primary key,
  checkpoint_id bigint not null references checkpoints (id),
  instance      text not null,
  details       jsonb,
  loaded_at     timestamptz not null default now()
);
create index checkpoint_loads_instance on checkpoint_loads (instance, id desc);

create table deployment_history (
  id            bigserial primary key,
  job_id        text not null,
  attempt       integer not null,
  service       text not null,
  model         text not null,
  checkpoint_id bigint references checkpoints (id),
  version       text,
  action        text not null check (action in ('validate', 'deploy-test')),
  host          text not null,
  status        text not null check (status in ('running', 'passed', 'failed', 'error')),
  metrics       jsonb,
  reasons       jsonb,
  logs          text,
  started_at    timestamptz not null default now(),
  finished_at   timestamptz,
  duration_ms   integer,
  unique (job_id, attempt)
);
create index deployment_history_checkpoint on deployment_history (checkpoint_id);

create table backtest_results (
  id            bigserial primary key,
  job_id        text not null,
  model         text not null,
  checkpoint_id bigint references checkpoints (id),
  symbol        text not null,
  timeframe     text not null,
  window_from   timestamptz,
  window_to     timestamptz,
  sharpe_ratio  double precision,
  total_return  double precision,
  max_drawdown  double precision,
  win_rate      double precision,
  trades        integer,
  created_at    timestamptz not null default now(),
  unique (job_id, symbol)
);
create index backtest_results_model_symbol on backtest_results (model, symbol, created_at desc);
