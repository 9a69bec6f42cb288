import { Operator } from '../../operator/operator.js';
import type { Command } from '../context.js';
import { describeResult, exitOf } from './outcome.js';

export const retry: Command = {
  summary: 'run the next recovery step of a record now (parked or not)',
  flags: ['json'],
  args: ['xid'],
  async run({ config, output, args }) {
    const result = await new Operator(config.tcc).retry(args[0]!);
    if (output.json) output.out(JSON.stringify(resultJson(result)));
    else output.out(describeResult(result));
    return exitOf(result);
  },
};

export function resultJson(result: { xid: string; outcome: string; status?: string; error?: unknown }) {
  return {
    xid: result.xid,
    outcome: result.outcome,
    ...(result.status === undefined ? {} : { status: result.status }),
    ...(result.error === undefined
      ? {}
      : { error: result.error instanceof Error ? result.error.message : String(result.error) }),
  };
}
