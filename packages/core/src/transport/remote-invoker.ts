import type { Clock } from '../clock.js';
import type { RemoteInvoker, SettlePhase } from '../transaction/phase-driver.js';
import type { RemoteParticipant, TransactionRecord } from '../transaction/record.js';
import { describeFetchError, RemoteCommandError } from './errors.js';
import type { Signer } from './signing.js';
import { COMMAND_PATH, SIGNATURE_HEADER, signCommand } from './wire.js';

/** Sends confirm and cancel to remote branches: `POST <endpoint>/.tcc`. */
export class HttpRemoteInvoker implements RemoteInvoker {
  constructor(
    private readonly clock: Clock,
    private readonly signer: Signer | undefined,
    private readonly timeoutMs: number,
  ) {}

  async invoke(record: TransactionRecord, participant: RemoteParticipant, phase: SettlePhase): Promise<void> {
    const command = { action: phase, globalId: record.globalId, xid: participant.xid };
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.signer !== undefined)
      headers[SIGNATURE_HEADER] = signCommand(command, this.signer, this.clock.now());
    const url = `${participant.endpoint}/${COMMAND_PATH}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers,
        body: JSON.stringify(command),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      // Read in full, so the keep-alive connection goes back to the pool.
      text = await response.text();
    } catch (error) {
      throw new RemoteCommandError(participant.endpoint, phase, undefined, describeFetchError(error), error);
    }
    if (!response.ok)
      throw new RemoteCommandError(participant.endpoint, phase, response.status, text.slice(0, 500));
  }
}
