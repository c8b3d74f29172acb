// `multiplane registry confirm`: the operator's word that a held-back registry change removing every
// service is meant (the control plane never applies one on a timer). A client of the running control
// plane's HTTP API: POST /registry/held/confirm with the write token.

export const CONFIRM_USAGE = `  registry confirm --token-file F [--http http://127.0.0.1:15014]
      apply the registry change a running control plane holds back because it would remove every
      service (an emptied or truncated registry file, an emptied directory): /readyz names it`;

/** Prints what was confirmed; 0 when something was, 1 when nothing waited or the control plane refused. */
export async function confirmCommand(httpUrl: string, token: string, print: (line: string) => void): Promise<number> {
  const url = new URL("/registry/held/confirm", httpUrl);
  let res: Response;
  try {
    res = await fetch(url, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  } catch (err) {
    throw new Error(`registry confirm: cannot reach the control plane at ${url.origin}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as { confirmed?: { source: string; reasons: string[] }[]; services?: number; error?: string };
  if (!res.ok) throw new Error(`registry confirm: ${res.status}: ${body.error ?? res.statusText}`);
  for (const c of body.confirmed ?? []) print(`confirmed (${c.source}): ${c.reasons.join("; ")}`);
  print(`registry serving ${body.services} service${body.services === 1 ? "" : "s"}`);
  return 0;
}
