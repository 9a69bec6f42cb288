import { InvalidOptionError } from '@tcc/core';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `500ms`, `30s`, `15m`, `2h`, `7d` or a bare number of ms. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (match === null) {
    throw new InvalidOptionError(
      `${flag} must be a duration like 30s, 15m, 2h, 7d or a number of ms, got ${JSON.stringify(text)}`,
    );
  }
  return Number(match[1]) * UNITS[match[2] ?? 'ms']!;
}

export function parsePositiveInt(text: string, flag: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidOptionError(`${flag} must be a positive integer, got ${JSON.stringify(text)}`);
  }
  return value;
}
