/**
 * Waiting in tests for something that changes (log lines read, calls recorded): each change wakes the waiters,
 * who look again, so a test waits exactly as long as it must, never a guessed sleep. A slow timer looks again
 * too, for changes nobody announced (a process that exited).
 */
export class Changes {
  private readonly listeners = new Set<() => void>();

  /** Something changed: every waiter looks again. */
  notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  /** Calls `listener` on every change until the returned function is called. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Resolves with the first value of `check` that is not undefined, null or false. Throws `fail()`'s message as
   * soon as it returns one, or a timeout naming `what()` after `timeoutMs`.
   *
   * @example
   * await changes.until(() => logs.find((l) => l.msg === 'job completed'), { what: () => 'the job to complete' });
   */
  async until<T>(
    check: () => T | undefined | null | false,
    options: { what: () => string; timeoutMs?: number; pollMs?: number; fail?: () => string | undefined },
  ): Promise<T> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (;;) {
      const found = check();
      if (found !== undefined && found !== null && found !== false) return found;
      const failure = options.fail?.();
      if (failure) throw new Error(failure);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what()}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          stop();
          clearTimeout(timer);
          resolve();
        };
        const stop = this.subscribe(done);
        const timer = setTimeout(done, options.pollMs ?? 250);
      });
    }
  }
}
