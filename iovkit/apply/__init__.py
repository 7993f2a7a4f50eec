"""`iovkit apply` / `iovkit rollback`: run a plan's steps through an executor, journaled and reversible."""
