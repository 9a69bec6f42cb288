/**
 * The business effects a recovery drain had, as its worker processes told them (the record
 * number of every confirm and cancel their participant ran), and whether each stuck record was
 * confirmed exactly once: a drain that emptied the store without confirming, or confirmed twice,
 * cannot pass.
 */
export interface Effects {
  readonly confirmed: readonly number[];
  readonly cancelled: readonly number[];
}

const SHOWN = 5;

/** The `CONFIRMED n,n,...` and `CANCELLED ...` lines of a worker's output (missing: an empty list). */
export function parseEffects(out: string): Effects {
  const list = (name: string): number[] => {
    const line = new RegExp(`^${name} ([\\d,]*)$`, 'm').exec(out)?.[1] ?? '';
    return line === '' ? [] : line.split(',').map(Number);
  };
  return { confirmed: list('CONFIRMED'), cancelled: list('CANCELLED') };
}

/**
 * Breaches of "records 0 to `records` − 1 each confirmed once, by any worker, and none
 * cancelled" (empty: all is well); `xidOf` names a record in the message.
 */
export function checkEffects(
  records: number,
  xidOf: (n: number) => string,
  workers: readonly Effects[],
): string[] {
  const times = new Uint32Array(records);
  const strangers: number[] = [];
  for (const { confirmed } of workers) {
    for (const n of confirmed) {
      if (Number.isInteger(n) && n >= 0 && n < records) times[n]! += 1;
      else strangers.push(n);
    }
  }
  const never: string[] = [];
  const twice: string[] = [];
  times.forEach((t, n) => {
    if (t === 0) never.push(xidOf(n));
    else if (t > 1) twice.push(`${xidOf(n)} (${t} times)`);
  });
  const problems: string[] = [];
  const name = (list: readonly string[]): string =>
    `${list.slice(0, SHOWN).join(', ')}${list.length > SHOWN ? ', ...' : ''}`;
  if (never.length > 0) problems.push(`${never.length} records never confirmed: ${name(never)}`);
  if (twice.length > 0) problems.push(`${twice.length} records confirmed more than once: ${name(twice)}`);
  if (strangers.length > 0)
    problems.push(`${strangers.length} confirms of unknown records: ${name(strangers.map(String))}`);
  const cancels = workers.reduce((sum, w) => sum + w.cancelled.length, 0);
  if (cancels > 0) problems.push(`${cancels} cancels of records stuck CONFIRMING`);
  return problems;
}
