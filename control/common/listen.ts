// A server that cannot take its address says which server, which address and which flags choose it:
// "xDS server cannot listen on 127.0.0.1:15010 (--xds-host, --xds-port): the address is already in
// use", not a bare "listen EADDRINUSE" that leaves the user to guess which of three servers failed.
import { hostPort } from "./host-port.ts";

const ADDRESS_ERRORS: Readonly<Record<string, string>> = {
  EADDRINUSE: "the address is already in use (another process listens there: stop it, or choose another port)",
  EADDRNOTAVAIL: "the address is not one of this host's",
  EACCES: "permission denied (ports below 1024 need root)",
};

/** Runs `start`; an address error (also one a library wrapped in its own message) is rethrown naming the server. */
export async function listening<T>(server: string, host: string, port: number, flags: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const code = e.code && ADDRESS_ERRORS[e.code] ? e.code : Object.keys(ADDRESS_ERRORS).find((c) => e.message?.includes(c));
    if (!code) throw err;
    const address = hostPort(host, port);
    throw new Error(`${server} cannot listen on ${address} (${flags}): ${ADDRESS_ERRORS[code]}`, { cause: err });
  }
}
