// Does a reload look like a registry caught half-written, or one emptied by mistake? A 0-byte file, a
// file cut at a `---`, a directory swapped for an empty one and a rewrite seen half-way all parse and
// validate, and applying them pushes every Envoy a config with its listeners gone. This names what is
// suspicious about a reload (compared with the last one applied); the file source holds such a reload
// until it has stayed unchanged for a while.
import type { Resource } from "../../model.ts";

/** A file source's state: its resources and the text of each file they came from. */
export interface FilesState {
  resources: readonly Resource[];
  texts: ReadonlyMap<string, string>;
  /** Computed once per state (see RemovalCheck): a state is compared as `after`, then again as `before`. A service is one host of one ServiceEntry, as in the serving registry. */
  summary?: { services: Set<string>; perFile: Map<string, number> };
}

export interface RemovalPolicy {
  /** A reload removing more than this share (0..1) of the services is held; removing all of them always is. */
  maxRemovalShare: number;
}

/** Why a reload should not apply at once; `confirm`: it must wait for an operator's confirmation, not a timer. */
export interface RemovalConcerns {
  reasons: string[];
  confirm: boolean;
}

/** One file source's checks: it keeps each resource's service keys while the resource lives (files that did not change keep their resources). */
export class RemovalCheck {
  private readonly keys = new WeakMap<Resource, readonly string[]>();

  constructor(private readonly policy: RemovalPolicy) {}

  /** Why `after` should not apply at once; no reasons when nothing is suspicious. */
  concerns(before: FilesState, after: FilesState): RemovalConcerns {
    return removalConcerns(this.summaryOf(before), this.summaryOf(after), before, after, this.policy);
  }

  private summaryOf(state: FilesState): NonNullable<FilesState["summary"]> {
    if (state.summary) return state.summary;
    const services = new Set<string>();
    const perFile = new Map<string, number>();
    for (const r of state.resources) {
      perFile.set(r.origin.file, (perFile.get(r.origin.file) ?? 0) + 1);
      if (r.kind !== "ServiceEntry") continue;
      let keys = this.keys.get(r);
      if (!keys) this.keys.set(r, (keys = r.hosts.map((host) => `${r.namespace}/${r.name} ${host}`)));
      for (const k of keys) services.add(k);
    }
    return (state.summary = { services, perFile });
  }
}

type Summary = NonNullable<FilesState["summary"]>;

// Emptying the mesh takes a person's word: a crashed writer leaves exactly an empty or truncated file,
// and waiting for it to "settle" would apply it. So does a truncation that removes more than the share.
function removalConcerns({ services: was, perFile: countsBefore }: Summary, { services: now, perFile: countsAfter }: Summary, before: FilesState, after: FilesState, policy: RemovalPolicy): RemovalConcerns {
  const concerns: string[] = [];
  let share = 0;
  if (was.size > 0) {
    let removed = 0;
    for (const k of was) if (!now.has(k)) removed++;
    share = removed / was.size;
    if (now.size === 0) concerns.push(`it would remove ${was.size === 1 ? "the only service" : `all ${was.size} services`} the files define`);
    else if (share > policy.maxRemovalShare) {
      concerns.push(`it would remove ${removed} of the ${was.size} services the files define (${percent(share)}), more than the allowed share of ${percent(policy.maxRemovalShare)}`);
    }
  }
  const removalReasons = concerns.length;
  for (const [file, had] of countsBefore) {
    const text = after.texts.get(file);
    const old = before.texts.get(file);
    if (text === undefined || old === undefined || text === old) continue; // deleted files count through the services above
    const has = countsAfter.get(file) ?? 0;
    if (text.trim() === "") concerns.push(`${file} is empty (${text.length} characters) but held ${count(had, "resource")}`);
    else if (has < had && text.length < old.length && old.startsWith(text)) {
      concerns.push(`${file} looks cut short: it is the first ${text.length} of the ${old.length} characters it had, with ${has} of its ${count(had, "resource")}`);
    }
  }
  const truncated = concerns.length > removalReasons;
  return { reasons: concerns, confirm: (was.size > 0 && now.size === 0) || (truncated && share > policy.maxRemovalShare) };
}

const percent = (share: number) => `${Math.round(share * 1000) / 10} %`;
const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;
