// The plugin configuration:
//   {"node_ips": ["10.75.8.101"], "cidrs": ["fd00::/64"], "mode": "enforce" | "observe",
//    "allow_ports": [15021], "all_listeners": false, "learned_ttl_seconds": 600}
// Every key is optional; an empty configuration is valid (enforce, no configured IPs).
// Anything else (invalid JSON, unknown key, wrong type, unknown mode, bad IP) is rejected
// with one message naming the problem; the caller then keeps the last good configuration.
// Configuration text quoted in a message or in describe() is clipped (clip.ts): both are logged.
import { parseJson, jsonError, JsonKind, JsonValue } from "./json";
import { parseIpString, parseCidrString, ipHi, ipLo, cidrBits, formatIp } from "./ip";
import { clip } from "./clip";
import { decimal } from "./decimal";

export const DEFAULT_LEARNED_TTL_SECONDS: i32 = 600;
// Seconds as nanoseconds plus the current time stays far below 2^64.
const MAX_LEARNED_TTL_SECONDS: i64 = 2147483647;

/** A network: an exact address is a /128 (IPv4: /32, stored mapped). */
export class Net {
  constructor(public hi: u64, public lo: u64, public bits: i32, public text: string) {}
}

function netsText(nets: Array<Net>): string {
  let s = "";
  for (let i = 0; i < nets.length; i++) s += (i > 0 ? "," : "") + unchecked(nets[i]).text;
  return s;
}

export class GuardConfig {
  nodeIps: Array<Net> = [];
  cidrs: Array<Net> = [];
  enforce: bool = true;
  allowPorts: Array<i32> = [];
  allListeners: bool = false;
  learnedTtlSeconds: i32 = DEFAULT_LEARNED_TTL_SECONDS;

  /** How long a learned self address lasts after its last hit. */
  learnedTtlNanos(): u64 {
    return <u64>this.learnedTtlSeconds * 1_000_000_000;
  }

  describe(): string {
    let ports = "";
    for (let i = 0; i < this.allowPorts.length; i++) ports += (i > 0 ? "," : "") + decimal(unchecked(this.allowPorts[i]));
    return "mode=" + (this.enforce ? "enforce" : "observe") + " node_ips=[" + clip(netsText(this.nodeIps)) +
      "] cidrs=[" + clip(netsText(this.cidrs)) + "] allow_ports=[" + clip(ports) + "] all_listeners=" +
      (this.allListeners ? "true" : "false") + " learned_ttl_seconds=" + decimal(this.learnedTtlSeconds);
  }
}

/** Why the last parseConfig failed; "" when it succeeded. */
export let configError = "";

function fail(message: string): GuardConfig {
  configError = message;
  return new GuardConfig();
}

function stringList(key: string, v: JsonValue, cidr: bool, out: Array<Net>): string {
  if (v.kind != JsonKind.Array) return key + " must be an array of strings, got " + v.kindName();
  for (let i = 0; i < v.items.length; i++) {
    const item = unchecked(v.items[i]);
    const where = key + "[" + decimal(i) + "]";
    if (item.kind != JsonKind.String) return where + " must be a string, got " + item.kindName();
    if (cidr) {
      if (!parseCidrString(item.str)) return where + ": \"" + clip(item.str) + "\" is not a CIDR (e.g. 10.0.0.0/8, fd00::/64)";
      out.push(new Net(ipHi, ipLo, cidrBits, item.str));
    } else {
      if (!parseIpString(item.str)) return where + ": \"" + clip(item.str) + "\" is not an IP address";
      out.push(new Net(ipHi, ipLo, 128, formatIp(ipHi, ipLo)));
    }
  }
  return "";
}

/** The configuration in `text`; when configError is set afterwards, a default one to ignore. */
export function parseConfig(text: string): GuardConfig {
  configError = "";
  const cfg = new GuardConfig();
  let blank = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c != 32 && c != 9 && c != 10 && c != 13) { blank = false; break; }
  }
  if (blank) return cfg;
  const root = parseJson(text);
  if (root === null) return fail("invalid JSON: " + jsonError);
  const obj = changetype<JsonValue>(root);
  if (obj.kind != JsonKind.Object) return fail("the configuration must be a JSON object, got " + obj.kindName());
  for (let i = 0; i < obj.keys.length; i++) {
    const key = unchecked(obj.keys[i]);
    const v = unchecked(obj.items[i]);
    let err = "";
    if (key == "node_ips") {
      cfg.nodeIps = [];
      err = stringList(key, v, false, cfg.nodeIps);
    } else if (key == "cidrs") {
      cfg.cidrs = [];
      err = stringList(key, v, true, cfg.cidrs);
    } else if (key == "mode") {
      if (v.kind != JsonKind.String) err = "mode must be a string, got " + v.kindName();
      else if (v.str == "enforce") cfg.enforce = true;
      else if (v.str == "observe") cfg.enforce = false;
      else err = "mode must be \"enforce\" or \"observe\", got \"" + clip(v.str) + "\"";
    } else if (key == "allow_ports") {
      if (v.kind != JsonKind.Array) err = "allow_ports must be an array of port numbers, got " + v.kindName();
      cfg.allowPorts = [];
      for (let j = 0; err.length == 0 && j < v.items.length; j++) {
        const p = unchecked(v.items[j]);
        if (p.kind != JsonKind.Number || !p.exact || p.int < 1 || p.int > 65535) {
          err = "allow_ports[" + decimal(j) + "] must be a port number 1..65535";
        } else {
          cfg.allowPorts.push(<i32>p.int);
        }
      }
    } else if (key == "all_listeners") {
      if (v.kind != JsonKind.Bool) err = "all_listeners must be true or false, got " + v.kindName();
      else cfg.allListeners = v.bool;
    } else if (key == "learned_ttl_seconds") {
      if (v.kind != JsonKind.Number || !v.exact || v.int < 1 || v.int > MAX_LEARNED_TTL_SECONDS) {
        err = "learned_ttl_seconds must be a whole number of seconds from 1 to 2147483647, got " +
          (v.kind == JsonKind.Number ? clip(v.str) : v.kindName());
      } else {
        cfg.learnedTtlSeconds = <i32>v.int;
      }
    } else {
      err = "unknown key \"" + clip(key) + "\" (known: node_ips, cidrs, mode, allow_ports, all_listeners, learned_ttl_seconds)";
    }
    if (err.length > 0) return fail(err);
  }
  return cfg;
}
