// Freezes an object graph. Registry versions are frozen when they start serving, and tests freeze
// generated output: sharing objects across versions and proxies is safe only if nobody mutates them.
// Iterative, so a deep graph cannot overflow the stack. An already frozen object is taken as deeply
// frozen (everything here freezes through this function), which makes re-freezing shared parts free.

export function deepFreeze<T>(root: T): T {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const o = stack.pop();
    if (typeof o !== "object" || o === null || Object.isFrozen(o) || ArrayBuffer.isView(o)) continue;
    Object.freeze(o);
    for (const v of Object.values(o)) if (typeof v === "object" && v !== null) stack.push(v);
  }
  return root;
}
