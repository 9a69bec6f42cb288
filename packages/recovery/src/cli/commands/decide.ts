import type { OperatorDecision } from '../../operator/decision-rules.js';
import { Operator } from '../../operator/operator.js';
import type { Command } from '../context.js';
import { EXIT } from '../exit-codes.js';
import { describeResult, exitOf } from './outcome.js';
import { resultJson } from './retry.js';

/** `tccctl confirm` and `tccctl cancel`: an operator's decision, refused where the log contradicts it. */
export function decideCommand(decision: OperatorDecision): Command {
  return {
    summary:
      decision === 'confirm'
        ? 'decide confirm (only if every try is known to have succeeded and nothing says cancel)'
        : 'decide cancel (refused once confirm is decided)',
    flags: ['json'],
    args: ['xid'],
    async run({ config, output, args }) {
      const result = await new Operator(config.tcc).decide(args[0]!, decision);
      const { recovery } = result;
      if (output.json) {
        output.out(
          JSON.stringify({
            xid: result.xid,
            decision,
            wrote: result.wrote,
            ...(recovery === undefined ? {} : { recovery: resultJson(recovery) }),
          }),
        );
      } else if (recovery === undefined) {
        output.out(`${result.xid}: already ${decision === 'confirm' ? 'CONFIRMED' : 'CANCELLED'}`);
      } else {
        const written = result.wrote
          ? `${decision === 'confirm' ? 'CONFIRMING' : 'CANCELLING'} written; `
          : '';
        output.out(`${written}${describeResult(recovery)}`);
        if (exitOf(recovery) === EXIT.recoveryFailed) {
          output.err('the decision stands; the worker (or tccctl retry) finishes it');
        }
      }
      return recovery === undefined ? EXIT.ok : exitOf(recovery);
    },
  };
}
