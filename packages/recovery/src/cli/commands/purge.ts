import { InvalidOptionError } from '@tcc/core';
import { Operator } from '../../operator/operator.js';
import type { Command } from '../context.js';
import { parseDuration } from '../duration.js';
import { EXIT } from '../exit-codes.js';
import { count } from '../output.js';

export const purge: Command = {
  summary: "delete the domain's CONFIRMED/CANCELLED tombstones last written before a time",
  flags: ['older-than', 'dry-run', 'json', 'progress'],
  required: ['older-than'],
  args: [],
  async run({ config, output, flags }) {
    if (flags['older-than'] === undefined)
      throw new InvalidOptionError('purge needs --older-than <duration>, e.g. 7d');
    const age = parseDuration(flags['older-than'], '--older-than');
    const result = await new Operator(config.tcc).purge(
      Date.now() - age,
      (scanned) => output.progress(`scanned ${count(scanned, 'tombstone')}…`),
      flags['dry-run'] === true,
    );
    output.done();
    if (output.json) output.out(JSON.stringify({ ...result, dryRun: flags['dry-run'] === true }));
    else {
      const verb = flags['dry-run'] ? 'would purge' : 'purged';
      output.out(
        `${verb} ${result.purged} of ${count(result.scanned, 'tombstone')}${result.skipped ? ` (${result.skipped} changed meanwhile, kept)` : ''}`,
      );
    }
    return EXIT.ok;
  },
};
