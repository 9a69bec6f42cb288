/**
 * The try/confirm/cancel calls the services received, in order, so each scenario can show
 * which phases ran (and which failed) rather than leaving the reader to infer it from balances.
 */
export class Journal {
  #steps: string[] = [];

  /** Runs `work` as the step `name`, noting it as `name!` if it throws. */
  async step<T>(name: string, work: () => T | Promise<T>): Promise<T> {
    try {
      const result = await work();
      this.#steps.push(name);
      return result;
    } catch (error) {
      this.#steps.push(`${name}!`);
      throw error;
    }
  }

  /** The steps noted since the last call. */
  take(): string[] {
    const steps = this.#steps;
    this.#steps = [];
    return steps;
  }
}
