import { Operator } from '../../operator/operator.js';
import type { Command } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { recordJson } from '../output.js';

export const unpark: Command = {
  summary: 'put a parked record back in the automatic loop (retries reset)',
  flags: ['json'],
  args: ['xid'],
  async run({ config, output, args }) {
    const record = await new Operator(config.tcc).unpark(args[0]!);
    if (output.json) output.out(JSON.stringify(recordJson(record)));
    else output.out(`${record.xid}: unparked (status ${record.status}); the next scan picks it up`);
    return EXIT.ok;
  },
};
