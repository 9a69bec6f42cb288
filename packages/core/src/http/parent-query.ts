import type { TransactionRecord } from '../storage/record.js';
import type { OutcomeAnswer } from '../transaction/outcome-reporter.js';
import { UnknownPeerError } from './errors.js';
import type { HttpRemoteInvoker } from './remote-invoker.js';

/**
 * How a branch asks the record that enlisted it for the outcome: a `.tcc` query to the URL the
 * parent sent with the try, or, on a service given `http.peers`, only ever to the URL it was
 * told for that domain (a try's header then cannot point this service's queries anywhere).
 */
export function parentAsker(
  invoker: HttpRemoteInvoker,
  peers: ReadonlyMap<string, string>,
): (record: TransactionRecord) => Promise<OutcomeAnswer> {
  return async (record) => {
    // A branch record the runtime wrote has a parent; one written by hand asks its root.
    const parent = record.parent ?? { domain: record.rootDomain, xid: record.globalId };
    const endpoint = peers.size > 0 ? peers.get(parent.domain) : record.parent?.endpoint;
    if (endpoint === undefined) throw new UnknownPeerError(parent.domain, record.xid);
    return invoker.query(endpoint, {
      globalId: record.globalId,
      xid: parent.xid,
      branch: record.xid,
      domain: parent.domain,
    });
  };
}
