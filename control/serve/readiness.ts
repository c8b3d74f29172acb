// When the control plane is ready (/readyz): every registry source loaded, and serving what it
// reported last, neither refused nor held back nor out of reach.
import type { HeldChange } from "../registry/source.ts";
import type { StoreStatus } from "../registry/store.ts";

/** Not ready: why. Ready: remarks worth knowing, usually none. */
export function readiness(s: StoreStatus): { ready: boolean; reasons: string[] } {
  const reasons = s.sources.flatMap((src) => [
    ...(src.loaded ? [] : [`registry not loaded${src.refused.length ? `: ${src.refused.join("; ")}` : ""}`]),
    ...(src.loaded && src.refused.length ? [`${src.name}: last update refused, the last good registry keeps serving: ${src.refused.join("; ")}`] : []),
    ...(src.held ? [`${src.name}: a change is held back, the last good registry keeps serving: ${src.held.reasons.join("; ")}; ${heldUntil(src.held)}`] : []),
    ...(src.unavailable ? [`${src.name}: ${src.unavailable}`] : []),
  ]);
  // Skip mode serves without the invalid documents: ready, and says how many were left out.
  const notes = s.leftOut.documents > 0 ? [`${s.leftOut.documents} invalid document${s.leftOut.documents === 1 ? "" : "s"} left out (--on-invalid skip): ${s.leftOut.errors.join("; ")}`] : [];
  return reasons.length === 0 ? { ready: true, reasons: notes } : { ready: false, reasons };
}

/** How a held reload ends, for logs and /readyz. */
export function heldUntil(held: HeldChange): string {
  return held.appliesAt === undefined
    ? "it applies only when confirmed: `multiplane registry confirm --token-file FILE` (POST /registry/held/confirm with the token), or a restart with --accept-removals"
    : `it applies if the files stay unchanged until ${held.appliesAt} (--settle-seconds), or at once with --accept-removals`;
}
