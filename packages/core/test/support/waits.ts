/** A clock the test moves by hand (`clock.t += ms`). */
export function manualClock(start = Date.now()) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds; fails, naming `what`, after a bound no healthy run comes near. */
export async function eventually(
  condition: () => Promise<boolean>,
  what = 'condition',
  boundMs = 20_000,
): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > boundMs) throw new Error(`${what}: not met within ${boundMs} ms`);
    await sleep(5);
  }
}

/**
 * Moves `clock` on by `steps` × `stepMs`, each step only once the claim (`claimUntil`) has been
 * renewed past where it stood: a claim that the timer stopped renewing makes this time out.
 */
export async function passTimeWhileRenewed(
  clock: { t: number },
  claimUntil: () => Promise<number>,
  steps = 9,
  stepMs = 110,
): Promise<void> {
  for (let step = 0; step < steps; step++) {
    const until = await claimUntil();
    clock.t += stepMs;
    await eventually(async () => (await claimUntil()) > until, `claim renewed past ${until}`);
  }
}
