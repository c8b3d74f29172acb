// How a stream's responses are written: as fast as the proxy reads, and never more than one per type
// at a time. While a type's response has not yet been flushed to the connection (the proxy is slow or
// not reading, so HTTP/2 flow control holds it), later changes of that type only mark it pending;
// when the response has gone, the next one is built from the newest state. A stuck proxy therefore
// holds at most one response per type on the server, whatever the number of changes, and a slow one
// gets the latest version rather than the history. grpc-js's own buffer is respected too: after
// write() returns false, nothing is written until 'drain'. And the server's budget (send-budget.ts):
// a response is built only while the bytes on their way over all streams are under its limit.
import type * as grpc from "@grpc/grpc-js";
import type { SendBudget } from "./send-budget.ts";

/** Builds a type's response from the stream's current state, or undefined when there is nothing to send. */
export type BuildResponse = (typeUrl: string, force: boolean) => Buffer | undefined;

export class SendQueue {
  /** Types whose response the connection has not taken yet. */
  private readonly writing = new Set<string>();
  /** Types to (re)build once they may be written; true: answer even if nothing changed. */
  private readonly pending = new Map<string, boolean>();
  private blocked = false;
  private closed = false;
  /** Bytes this stream holds of the budget, given back when sent or when it closes. */
  private readonly held = new Set<() => void>();
  private readonly resume = () => this.flush();
  /** The HTTP/2 connection (its client's address and port): the budget takes connections in turn. */
  private readonly connection: string;

  constructor(private readonly call: grpc.ServerDuplexStream<unknown, Buffer>, private readonly build: BuildResponse, private readonly budget: SendBudget) {
    this.connection = call.getPeer();
    call.on("drain", () => {
      this.blocked = false;
      this.flush();
    });
  }

  /** Sends `typeUrl` from the newest state as soon as the stream can take it; `force` answers even an unchanged type. */
  request(typeUrl: string, force = false): void {
    if (this.closed) return;
    this.pending.set(typeUrl, force || (this.pending.get(typeUrl) ?? false));
    this.flush();
  }

  close(): void {
    this.closed = true;
    this.pending.clear();
    this.budget.forget(this.resume);
    for (const release of this.held) release();
    this.held.clear();
  }

  private flush(): void {
    for (const [typeUrl, force] of this.pending) {
      if (this.closed || this.blocked) return;
      if (this.writing.has(typeUrl)) continue;
      if (!this.budget.admit(this.resume, this.connection)) return;
      this.pending.delete(typeUrl);
      const response = this.build(typeUrl, force);
      if (!response) continue;
      this.writing.add(typeUrl);
      const release = this.budget.hold(response.length);
      this.held.add(release);
      const more = this.call.write(response, () => {
        release();
        this.held.delete(release);
        this.writing.delete(typeUrl);
        if (this.pending.has(typeUrl)) this.flush();
      });
      if (!more) this.blocked = true;
    }
  }
}
