-- 0004: an index to read, in one pass, the subscriptions that local
-- watchers hold to one presentity: the watcher's server loads them into
-- memory when a NOTIFY about that presentity arrives (SubsOutTo).
CREATE INDEX subs_out_presentity ON subs_out (presentity);
