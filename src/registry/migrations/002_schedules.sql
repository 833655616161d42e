-- Schedules: every fire (the unique key is what makes a fire happen once across replicas) and
-- each schedule's paused flag with who paused it and why.

create table schedule_fires (
  id             bigserial primary key,
  schedule       text not null,
  scheduled_for  timestamptz not null,
  manual         boolean not null default false,
  source         text not null check (source in ('cron', 'catch-up', 'trigger', 'resume')),
  outcome        text not null check (outcome in ('claimed', 'enqueued', 'skipped', 'missed', 'failed')),
  job_ids        text[] not null default '{}',
  reason         text,
  actor          text not null,
  interval_start timestamptz,
  interval_end   timestamptz,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  unique (schedule, scheduled_for, manual)
);
create index schedule_fires_recent on schedule_fires (schedule, scheduled_for desc);

create table schedule_state (
  schedule      text primary key,
  known_since   timestamptz not null default now(),
  paused        boolean not null default false,
  paused_by     text,
  paused_reason text,
  paused_at     timestamptz,
  resumed_at    timestamptz,
  updated_at    timestamptz not null default now()
);
