-- Every start of a training job and every checkpoint it reported, recorded as it happens: a rerun
-- of the job (after a crash, a stall, a lost lock, a hand-back, a preemption or a manual retry)
-- resumes from the newest reported checkpoint whose file still matches its sha256, and the final
-- checkpoint's lineage lists each attempt and where it resumed.

create table training_attempts (
  job_id               text        not null,
  -- BullMQ's attemptsStarted: every start of the job, a stalled job's rerun and a hand-back's too
  attempt              integer     not null,
  host                 text        not null,
  started_at           timestamptz not null default now(),
  resumed_from_path    text,
  resumed_from_epoch   integer,
  resumed_from_attempt integer,
  ended_at             timestamptz,
  -- completed, failed, cancel, lock-lost, shutdown, drain, overrun, preempt
  ended_how            text,
  primary key (job_id, attempt)
);

create table training_checkpoints (
  id          bigserial   primary key,
  job_id      text        not null,
  attempt     integer     not null,
  epoch       integer,
  path        text        not null,
  size_bytes  bigint      not null,
  sha256      text        not null,
  reported_at timestamptz not null default now(),
  unique (job_id, path, sha256)
);

create index training_checkpoints_newest on training_checkpoints (job_id, id desc);
