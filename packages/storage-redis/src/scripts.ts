import { GENERATED_SCRIPTS } from './scripts.generated.js';

/** One Lua script of `src/commands`, BullMQ-style: `<name>-<number of keys>.lua`. */
export interface ScriptDefinition {
  readonly name: string;
  /** `null`: the caller passes the count first. */
  readonly numberOfKeys: number | null;
  readonly lua: string;
}

/**
 * The scripts by name: the writes create, update, complete, remove and batch (several of them
 * in one script), sweep, range. Their source is
 * compiled in (`scripts.generated.ts`, written from the `.lua` files by
 * `scripts/generate-scripts.mjs`) rather than read from disk, so a bundled app carries them.
 */
export const SCRIPTS: ReadonlyMap<string, ScriptDefinition> = new Map(
  Object.entries(GENERATED_SCRIPTS).map(([name, script]) => [name, { name, ...script }]),
);
