/** A clock the test moves by hand (`clock.t += ms`). */
export function manualClock(start = Date.now()) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds; fails after a bound no healthy run comes near. */
export async function eventually(condition: () => Promise<boolean>, boundMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > boundMs) throw new Error(`condition not met within ${boundMs} ms`);
    await sleep(5);
  }
}
