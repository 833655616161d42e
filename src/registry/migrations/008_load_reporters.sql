-- Who reported each load: the name of the API token FinColl used (tokens have names now, and
-- every change records who made it). Loads reported before this migration have none.
alter table checkpoint_loads add column reported_by text;
