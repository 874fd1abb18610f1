/**
 * The work a manager has running in the background (an acquisition, a renewal, watches), so that
 * close() can wait for all of it and leave nothing running behind.
 */
export class TaskSet {
  private readonly running = new Set<Promise<unknown>>();

  /** Returns `work` as is, remembered until it settles. */
  track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    const forget = (): void => {
      this.running.delete(work);
    };
    work.then(forget, forget);
    return work;
  }

  /** Resolves once nothing is running, work started meanwhile included. Never rejects. */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
