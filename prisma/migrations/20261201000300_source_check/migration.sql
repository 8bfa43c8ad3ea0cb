-- The source names were a CHECK listing carecloud and cin7, so a new source needed a migration. The registry
-- (src/sources/index.ts) is now the one list: the write path refuses vouchers of a source not registered there
-- (writePage, through requireSource), and a new source needs no migration.
ALTER TABLE "vouchers" DROP CONSTRAINT "vouchers_source_check";
