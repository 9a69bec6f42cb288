import type { OutcomeAnswer } from '../transaction/outcome-reporter.js';
import type { TransactionRecord } from '../transaction/record.js';
import { UnknownPeerError } from './errors.js';
import type { HttpRemoteInvoker } from './remote-invoker.js';

/**
 * How a branch asks the record that enlisted it for the outcome: a `.tcc` query to the URL this
 * service was told for that domain (`http.peers`), else to the one the parent sent with the try.
 */
export function parentAsker(
  invoker: HttpRemoteInvoker,
  peers: ReadonlyMap<string, string>,
): (record: TransactionRecord) => Promise<OutcomeAnswer> {
  return async (record) => {
    // A branch record always has a parent; one made by hand without it can only be cancelled.
    const parent = record.parent ?? { domain: record.rootDomain, xid: record.globalId };
    const endpoint = peers.get(parent.domain) ?? record.parent?.endpoint;
    if (endpoint === undefined) throw new UnknownPeerError(parent.domain, record.xid);
    return invoker.query(endpoint, {
      globalId: record.globalId,
      xid: parent.xid,
      branch: record.xid,
      domain: parent.domain,
    });
  };
}
