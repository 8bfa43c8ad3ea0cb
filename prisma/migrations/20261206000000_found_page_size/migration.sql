-- The largest page a source accepts, found at run time (CARECLOUD_PAGE_SIZE=auto: CareCloud documents no maximum for
-- `count` and answers 400 naming it above its own): the two bounds known, kept with the stream so that every worker,
-- process and later run asks for that size without probing again. Written only when a bound moves.
ALTER TABLE "sync_state" ADD COLUMN "page_size_accepted" INTEGER;
ALTER TABLE "sync_state" ADD COLUMN "page_size_refused" INTEGER;
-- The maximum the last refusal's message named, if any: the next size to try, by whichever worker asks next.
ALTER TABLE "sync_state" ADD COLUMN "page_size_hint" INTEGER;
ALTER TABLE "sync_state" ADD COLUMN "page_size_checked_at" TIMESTAMPTZ(3);
