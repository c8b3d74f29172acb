// Which addresses fetched the loop guard module from this control plane, and with what answer, so
// /debug/proxies can say whether a proxy has its module (Envoy ACKs the config before the fetch and
// keeps its guarded listeners warming until the module arrives; it never NACKs a failed fetch).
// Bounded: the oldest address is forgotten first.

const MAX_ADDRESSES = 10_000;

export interface Fetch {
  at: Date;
  status: number;
}

export class FetchLog {
  private readonly byAddress = new Map<string, Fetch>();

  record(address: string, status: number): void {
    this.byAddress.delete(address);
    this.byAddress.set(address, { at: new Date(), status });
    if (this.byAddress.size > MAX_ADDRESSES) this.byAddress.delete(this.byAddress.keys().next().value!);
  }

  last(address: string): Fetch | undefined {
    return this.byAddress.get(address);
  }
}
