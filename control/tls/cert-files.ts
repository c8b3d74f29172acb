// The control plane's TLS certificate, key and (for mutual TLS) client CA, read from files and read
// again when they change on disk, so certificates rotate without a restart. A new set is used only
// once it is whole and consistent (the key matches the certificate, everything parses); until then
// the previous set keeps serving. Implements grpc-js's CertificateProvider, and tells other servers
// (the loop guard module's) through onChange. Paths, subjects and expiry dates are logged, never key material.
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import type * as grpc from "@grpc/grpc-js";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** Clients must present a certificate signed by this CA (mutual TLS). */
  clientCaFile?: string;
}

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

type CaListener = (update: grpc.experimental.CaCertificateUpdate | null) => void;
type IdentityListener = (update: grpc.experimental.IdentityCertificateUpdate | null) => void;

/** How often the files are compared with what is loaded. Reading three small files is cheap. */
const DEFAULT_REFRESH_MS = 1000;

/** Reads the files and checks that they form a usable set; throws a one-line reason naming the file. */
export function readTlsFiles(files: TlsFiles): TlsMaterial {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const m: TlsMaterial = { cert: read(files.certFile, "certificate"), key: read(files.keyFile, "key"), ...(files.clientCaFile ? { ca: read(files.clientCaFile, "client CA") } : {}) };
  try {
    new X509Certificate(m.cert);
  } catch (err) {
    throw new Error(`certificate ${files.certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  if (m.ca) {
    try {
      new X509Certificate(m.ca);
    } catch (err) {
      throw new Error(`client CA ${files.clientCaFile} is not a PEM certificate: ${(err as Error).message}`);
    }
  }
  try {
    createSecureContext({ cert: m.cert, key: m.key, ...(m.ca ? { ca: m.ca } : {}) });
  } catch (err) {
    throw new Error(`certificate ${files.certFile} and key ${files.keyFile} do not form a TLS identity: ${(err as Error).message}`);
  }
  return m;
}

/** Subject and expiry of the certificate, for logs. */
export function describeCertificate(cert: Buffer): string {
  const x = new X509Certificate(cert);
  return `${x.subject.replace(/\n/g, ", ") || "(no subject)"}${x.subjectAltName ? `, SAN ${x.subjectAltName}` : ""}, valid until ${new Date(x.validTo).toISOString()}`;
}

const digest = (m: TlsMaterial) => createHash("sha256").update(m.cert).update("\0").update(m.key).update("\0").update(m.ca ?? "").digest("hex");

export class CertificateFiles implements grpc.experimental.CertificateProvider {
  private material: TlsMaterial;
  private loadedDigest: string;
  /** The last read's failure: seen once ("pending": maybe a rotation in progress) or reported. */
  private failure?: { reason: string; reported: boolean };
  private timer?: NodeJS.Timeout;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly changeListeners = new Set<(m: TlsMaterial) => void>();

  /** Reads the files now (throws if they are not usable) and checks them again every refreshMs. */
  constructor(readonly files: TlsFiles, private readonly log: (line: string) => void = () => {}, private readonly refreshMs = DEFAULT_REFRESH_MS) {
    this.material = readTlsFiles(files);
    this.loadedDigest = digest(this.material);
    this.timer = setInterval(() => this.refresh(), refreshMs);
    this.timer.unref();
  }

  get mutual(): boolean {
    return this.files.clientCaFile !== undefined;
  }

  current(): TlsMaterial {
    return this.material;
  }

  /** Calls `listener` with every new set of files; returns the function that stops it. */
  onChange(listener: (m: TlsMaterial) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Reads the files again; applies them if they changed and are usable. */
  refresh(): void {
    let next: TlsMaterial;
    try {
      next = readTlsFiles(this.files);
    } catch (err) {
      // A rotation in progress (certificate written, key not yet) fails once; report a failure only when it persists.
      const reason = (err as Error).message;
      if (this.failure?.reason === reason && !this.failure.reported) {
        this.failure.reported = true;
        this.log(`warning: TLS files not reloaded, the previous certificate keeps serving: ${reason}`);
      } else if (this.failure?.reason !== reason) {
        this.failure = { reason, reported: false };
      }
      return;
    }
    this.failure = undefined;
    const d = digest(next);
    if (d === this.loadedDigest) return;
    this.material = next;
    this.loadedDigest = d;
    this.log(`TLS certificate reloaded from ${this.files.certFile}: ${describeCertificate(next.cert)}${next.ca ? `; client CA from ${this.files.clientCaFile}` : ""}`);
    this.publish();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  // grpc-js CertificateProvider. Updates are delivered on the next tick: grpc-js registers its own
  // watcher only after adding these listeners, and would miss a synchronous first update.
  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => this.caListeners.has(listener) && listener(this.material.ca ? { caCertificate: this.material.ca } : null));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => this.identityListeners.has(listener) && listener({ certificate: this.material.cert, privateKey: this.material.key }));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  private publish(): void {
    const m = this.material;
    for (const l of this.caListeners) l(m.ca ? { caCertificate: m.ca } : null);
    for (const l of this.identityListeners) l({ certificate: m.cert, privateKey: m.key });
    for (const l of this.changeListeners) l(m);
  }
}
