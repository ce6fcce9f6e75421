-- 0004: an index for the lookups of an incoming NOTIFY, which names one
-- presentity and many local watchers (SubsOutTo): without it, each NOTIFY
-- scanned subs_out.
CREATE INDEX subs_out_presentity ON subs_out (presentity);
