// Freezes an object graph. Registry versions are frozen when they start serving, and tests freeze
// generated output: sharing objects across versions and proxies is safe only if nobody mutates them.
// Iterative, so a deep graph cannot overflow the stack. An already frozen object is taken as deeply
// frozen (everything here freezes through this function), which makes re-freezing shared parts free.

export function deepFreeze<T>(root: T): T {
  const stack: unknown[] = [root];
  const push = (v: unknown) => {
    if (typeof v === "object" && v !== null && !Object.isFrozen(v)) stack.push(v);
  };
  while (stack.length > 0) {
    const o = stack.pop() as Record<string, unknown>;
    if (typeof o !== "object" || o === null || Object.isFrozen(o) || ArrayBuffer.isView(o)) continue;
    Object.freeze(o);
    // Indexed and for-in walks, not Object.values: no array per object (generation output has ~100,000s).
    if (Array.isArray(o)) for (let i = 0; i < o.length; i++) push(o[i]);
    else for (const k in o) push(o[k]);
  }
  return root;
}
