// An address as logs, URLs and gRPC targets write it: an IPv6 literal in brackets, so its colons are
// not taken for the port's.

/** HOST:PORT, IPv6 in brackets: "[::1]:15010". */
export const hostPort = (host: string, port: number): string => `${host.includes(":") ? `[${host}]` : host}:${port}`;
