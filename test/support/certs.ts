// Test certificates made with the openssl command line, exactly as the README's "Running across hosts"
// makes them: an EC P-256 CA, and leaf certificates signed by it with SPIFFE URI, IP and DNS SANs.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface CertPair {
  cert: string;
  key: string;
}

export interface LeafOptions {
  /** e.g. spiffe://cluster.local/ns/default/sa/service-a */
  uris?: string[];
  ips?: string[];
  dns?: string[];
  days?: number;
}

/** Why certificates cannot be made here, or undefined. */
export function opensslUnavailableReason(): string | undefined {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return "the openssl command is not installed (Debian: apt-get install -y openssl)";
  }
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"], timeout: 15000 });
  } catch (err) {
    throw new Error(`openssl ${args.join(" ")}: ${String((err as { stderr?: Buffer }).stderr ?? err)}`);
  }
}

export function makeCa(dir: string, name = "ca", subject = "/CN=multiplane test CA"): CertPair {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "365", "-subj", subject,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", key, "-out", cert], dir);
  return { cert, key };
}

export function makeLeaf(dir: string, ca: CertPair, name: string, opts: LeafOptions = {}): CertPair {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const sans = [...(opts.uris ?? []).map((u) => `URI:${u}`), ...(opts.ips ?? []).map((i) => `IP:${i}`), ...(opts.dns ?? []).map((d) => `DNS:${d}`)];
  writeFileSync(ext, [
    ...(sans.length ? [`subjectAltName=${sans.join(",")}`] : []),
    "basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth,clientAuth", "",
  ].join("\n"));
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${name}`, "-keyout", key, "-out", csr], dir);
  openssl(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-days", String(opts.days ?? 30), "-out", cert, "-extfile", ext], dir);
  return { cert, key };
}

/** Lets a proxy running as `uid` read its own key (and only it). */
export function giveKeyTo(pair: CertPair, uid: number): void {
  chownSync(pair.key, uid, uid);
  chmodSync(pair.key, 0o400);
}
