import { OutOfStockError } from './fixtures.js';
import { cancels, type Workload } from './workload.js';

const SHOWN = 5;

/**
 * How each transaction of a scenario ended, as its caller saw it. A transaction that confirmed
 * though the workload made its try fail has no error to throw: it is counted, and the audit
 * names it afterwards. An error the workload did not cause is counted too, and the caller
 * rethrows it, so that a failing store stops the run as it always did.
 */
export class Tally {
  confirmed = 0;
  cancelled = 0;
  unexpected = 0;
  /** The first few unexpected outcomes, for the audit's message. */
  readonly examples: string[] = [];

  constructor(readonly work: Workload) {}

  confirm(n: number): void {
    if (cancels(this.work, n))
      this.#note(`transaction ${n} confirmed, but its second try should have failed`);
    else this.confirmed++;
  }

  /** Whether the failure was the one the workload asked for (the caller rethrows the others). */
  cancel(n: number, error: unknown): boolean {
    if (error instanceof OutOfStockError && cancels(this.work, n)) {
      this.cancelled++;
      return true;
    }
    this.#note(`transaction ${n} failed: ${error instanceof Error ? error.message : String(error)}`);
    return false;
  }

  #note(what: string): void {
    this.unexpected++;
    if (this.examples.length < SHOWN) this.examples.push(what);
  }
}
