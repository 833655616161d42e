-- A claimed fire is leased: its claimer holds it until claimed_until, and a live scheduler takes
-- over a claim whose lease ran out (its claimer died between claiming and enqueueing) and finishes
-- it. claimed_by is the replica that claimed the fire, repaired_by the one that took it over and
-- finished it (the last one, if a repairer died too).

alter table schedule_fires
  add column claimed_by    text,
  add column claimed_until timestamptz,
  add column repaired_by   text,
  add column repaired_at   timestamptz;

-- The claims a repair pass looks for: few at any time.
create index schedule_fires_claims on schedule_fires (schedule) where outcome = 'claimed';
