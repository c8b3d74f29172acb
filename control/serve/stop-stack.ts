// What to stop, pushed as each part starts and unwound in reverse: a failed start undoes what had
// started, and stop() undoes everything, from one list.
export class StopStack {
  private readonly stops: (() => void | Promise<void>)[] = [];
  private unwinding?: Promise<void>;

  push(stop: () => void | Promise<void>): void {
    this.stops.push(stop);
  }

  /** Runs each stop once, newest first, each after the one before has finished; a stop that throws does not keep the rest from running, and its error is thrown at the end. Calls after the first share its result. */
  unwind(): Promise<void> {
    return (this.unwinding ??= this.run());
  }

  private async run(): Promise<void> {
    const errors: unknown[] = [];
    for (let stop = this.stops.pop(); stop; stop = this.stops.pop()) {
      try {
        await stop();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}
