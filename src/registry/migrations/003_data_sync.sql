-- Market-data syncs under the fenced lock. The fence comes from a Postgres sequence so that it
-- keeps increasing even if Redis loses its data; each key keeps the newest fence that wrote.

create sequence lock_fence_seq;

create table market_data_syncs (
  symbol      text not null,
  timeframe   text not null,
  fence       bigint not null,
  job_id      text not null,
  source      text not null,
  rows        integer not null,
  range_from  timestamptz,
  range_to    timestamptz,
  synced_at   timestamptz not null default now(),
  primary key (symbol, timeframe)
);

create table market_data_sync_log (
  id          bigserial primary key,
  symbol      text not null,
  timeframe   text not null,
  fence       bigint not null,
  job_id      text not null,
  outcome     text not null check (outcome in ('written', 'refused')),
  rows        integer,
  range_from  timestamptz,
  range_to    timestamptz,
  created_at  timestamptz not null default now()
);
create index market_data_sync_log_key on market_data_sync_log (symbol, timeframe, id desc);

-- What a checkpoint was trained on (the data syncs), and later its comparisons.
alter table checkpoints add column lineage jsonb not null default '{}';
