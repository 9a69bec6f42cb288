/**
 * Exit codes of `tccctl`, stable so scripts can rely on them:
 * - 0 done; 1 unexpected failure (store unreachable, ...); 2 bad usage (unknown command or flag,
 *   bad value); 3 bad config (missing file, fails to load, no Tcc exported), or the config's
 *   embedded log is held by another process (`TCC_STORE_LOCKED`); 4 no such record;
 * - 5 refused (an operator decision that contradicts the log; unpark of a record not parked);
 * - 6 the recovery attempt the command ran failed (the record is kept for the next one);
 * - 7 conflict: another process changed the record meanwhile, or is driving it, nothing
 *   written; run it again;
 * - 8 corrupt: `tccctl ls` listed what it could read and left out records it could not (named).
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  notFound: 4,
  refused: 5,
  recoveryFailed: 6,
  conflict: 7,
  corrupt: 8,
} as const;
