import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../src/telemetry/version.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

describe("the recovery worker's instrumentation scope version", () => {
  it('is the version of package.json, both from src/ and from the built dist/', async () => {
    expect(VERSION).toBe(version);
    const built = new URL('../dist/telemetry/version.js', import.meta.url);
    if (!existsSync(built)) return; // not built (typecheck builds it)
    const { VERSION: fromDist } = (await import(built.href)) as { VERSION: string };
    expect(fromDist).toBe(version);
  });
});
