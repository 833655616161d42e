-- The newest fence granted for each lock name, recorded by the holder when it is granted, before
-- it may write. The fenced write of a key refuses any fence older than this, so a holder that lost
-- its lock is refused as soon as the next holder is granted, whether or not that holder has
-- written yet.

create table lock_fences (
  lock_key      text primary key,
  newest_fence  bigint not null,
  granted_at    timestamptz not null default now()
);
