// The xDS CA and client certificate that `multiplane bootstrap --xds-ca/--cert/--key` gives Envoy, as
// the bootstrap and the clusters the control plane sends refer to them. With --out they are delivered by
// filesystem SDS: one file per secret (XdsSdsPaths), which names the PEM files; Envoy watches those and
// reloads a secret when one of its files is replaced (moved into its directory), without a restart. An
// SDS secret is known by its name and its sds_config, so a cluster the control plane sends must carry
// the same path to use the same secret: the bootstrap lists the paths in the node metadata key
// XDS_SECRETS_METADATA (control/identity/xds-secrets.ts). A bootstrap without that key (older ones)
// has static secrets, named only.
import type { XdsSdsPaths } from "../identity/xds-secrets.ts";
import { XDS_CA_SECRET, XDS_CERT_SECRET } from "./names.ts";

export interface SdsSecretReference {
  name: string;
  sds_config?: { path_config_source: { path: string }; resource_api_version: "V3" };
}

/** A reference to a secret: by filesystem SDS from `sdsPath`, or (no path) a static secret of the bootstrap. */
function reference(name: string, sdsPath: string | undefined): SdsSecretReference {
  return sdsPath === undefined ? { name } : { name, sds_config: { path_config_source: { path: sdsPath }, resource_api_version: "V3" } };
}

export const xdsCaReference = (sds: XdsSdsPaths | undefined): SdsSecretReference => reference(XDS_CA_SECRET, sds?.ca);
export const xdsCertReference = (sds: XdsSdsPaths | undefined): SdsSecretReference => reference(XDS_CERT_SECRET, sds?.cert);
