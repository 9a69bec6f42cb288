/** Source of time, in milliseconds since the epoch. Tests pass their own to move deadlines. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: Date.now };
