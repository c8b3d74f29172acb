// The file an API-written ServiceEntry is stored in: `<namespace>.<name>.yaml`. Namespaces are DNS
// labels (no dots), so the name is unambiguous. Names may be 253 characters, which with the namespace
// would pass the usual 255-byte file name limit; those are shortened and made unique with a hash.
import { createHash } from "node:crypto";

const MAX_FILE_NAME = 255;

export function entryFileName(namespace: string, name: string): string {
  const plain = `${namespace}.${name}.yaml`;
  if (plain.length <= MAX_FILE_NAME) return plain;
  const hash = createHash("sha256").update(`${namespace}/${name}`).digest("hex").slice(0, 16);
  // "~" never appears in a DNS name, so a shortened name cannot equal a plain one.
  return `${namespace}.${name.slice(0, 150)}~${hash}.yaml`;
}
