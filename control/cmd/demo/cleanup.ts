// Cleanups that must run even when the demo does not get to its own `finally`: the process exits, or
// is signalled (Ctrl-C), while namespaces, veths, iptables rules, processes or temporary files exist.
// The runner creates one registry per run and closes it afterwards, so the process hooks exist only
// while there is something to clean up and no state outlives the run.

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
type HandledSignal = keyof typeof SIGNALS;

export class CleanupRegistry {
  private readonly pending = new Set<{ run(): void }>();
  private readonly onExit = () => this.runAll();
  private readonly onSignal = (sig: HandledSignal) => {
    this.runAll();
    // Behave like the default action afterwards: exit with 128 + signal number.
    process.exit(128 + SIGNALS[sig]);
  };
  private closed = false;

  constructor() {
    process.on("exit", this.onExit);
    for (const sig of Object.keys(SIGNALS) as HandledSignal[]) process.on(sig, this.onSignal);
  }

  /**
   * Registers a synchronous cleanup to run if the process exits or is signalled before the returned
   * remover is called (call it once the thing is cleaned up the ordinary way).
   */
  add(fn: () => void): () => void {
    if (this.closed) throw new Error("cleanup registry already closed");
    const entry = { run: fn };
    this.pending.add(entry);
    return () => { this.pending.delete(entry); };
  }

  /** Runs what is still registered, most recent first (processes before the namespaces they live in). */
  runAll(): void {
    for (const entry of [...this.pending].reverse()) {
      this.pending.delete(entry);
      try { entry.run(); } catch { /* best effort: the others must still run */ }
    }
  }

  /** Runs anything still registered and removes the process hooks. */
  close(): void {
    if (this.closed) return;
    this.runAll();
    this.closed = true;
    process.off("exit", this.onExit);
    for (const sig of Object.keys(SIGNALS) as HandledSignal[]) process.off(sig, this.onSignal);
  }
}
