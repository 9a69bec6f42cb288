import type { Command } from '../context.js';
import { EXIT } from '../exit-codes.js';

export const migrate: Command = {
  summary: "bring the store's schema up to date (SQL tables, Redis schema marker)",
  flags: ['json'],
  args: [],
  async run({ config, output }) {
    const storage = config.tcc.storage as { migrate?: () => Promise<unknown> };
    const name = storage.constructor?.name ?? 'storage';
    if (typeof storage.migrate !== 'function') {
      if (output.json) output.out(JSON.stringify({ storage: name, migrated: false }));
      else output.out(`${name} has no schema to migrate`);
      return EXIT.ok;
    }
    await storage.migrate();
    if (output.json) output.out(JSON.stringify({ storage: name, migrated: true }));
    else output.out(`${name}: schema up to date`);
    return EXIT.ok;
  },
};
