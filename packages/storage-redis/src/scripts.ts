import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One Lua script of `src/commands`, BullMQ-style: `<name>-<number of keys>.lua`. */
export interface ScriptDefinition {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

// Resolves to `<package>/src/commands/` both from `src/scripts.ts` and from `dist/scripts.js`
// (the package ships `src`), so the build needs no copy step.
const COMMANDS_DIR = new URL('../src/commands/', import.meta.url);

function loadScripts(): ReadonlyMap<string, ScriptDefinition> {
  const scripts = new Map<string, ScriptDefinition>();
  for (const file of readdirSync(fileURLToPath(COMMANDS_DIR))) {
    const match = /^([a-z]+)-(\d+)\.lua$/.exec(file);
    if (match === null) continue;
    const name = match[1]!;
    scripts.set(name, {
      name,
      numberOfKeys: Number(match[2]),
      lua: withIncludes(readFileSync(new URL(file, COMMANDS_DIR), 'utf8')),
    });
  }
  return scripts;
}

/**
 * Inlines each `--- @include "<name>"` line with `includes/<name>.lua` (BullMQ's convention):
 * helpers shared by several scripts are written once, and each script still loads as one.
 */
function withIncludes(lua: string): string {
  return lua.replace(/^--- @include "([A-Za-z]+)"$/gm, (_, name: string) =>
    readFileSync(new URL(`includes/${name}.lua`, COMMANDS_DIR), 'utf8').trimEnd(),
  );
}

/** The write scripts by name: create, update, complete, remove, sweep. */
export const SCRIPTS = loadScripts();
