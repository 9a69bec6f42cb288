import { InvalidOptionError } from '../base/errors.js';

// Names end up in stored records and in storage keys: keep them printable and unambiguous.
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;

/** Validates a participant or action name; `where` says who gave it. */
export function checkName(name: unknown, where: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidOptionError(
      `${where}: name must be 1-128 characters of letters, digits, _ . : - (not starting with . : -),` +
        ` got ${typeof name === 'string' ? JSON.stringify(name) : String(name)}`,
    );
  }
  return name;
}
