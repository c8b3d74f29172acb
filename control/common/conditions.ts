// Waiting for a condition on some state that changes by events: `until(check)` resolves once `check()`
// holds after a wake(), with whether it holds, and gives up after a timeout or once the owner stops
// (then it resolves with check() as it is). The etcd view and the Kubernetes reflector wait this way.

export class Conditions {
  private readonly waiters = new Set<() => void>();

  /** `stopped`: the owner has stopped; waiters resolve at the next wake. */
  constructor(private readonly stopped: () => boolean) {}

  /** Resolves true once `check()` holds after a wake(), false after `timeoutMs` (Infinity: never) or when stopped. */
  until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        if (!check() && !this.stopped()) return;
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve(check());
      };
      const timer = timeoutMs === Infinity ? undefined : setTimeout(() => { this.waiters.delete(wake); resolve(check()); }, timeoutMs);
      this.waiters.add(wake);
    });
  }

  /** The state changed (or the owner stopped): every waiter looks again. */
  wake(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
