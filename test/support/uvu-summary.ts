// Reading a uvu run's output (ANSI colours and all): its summary ("Total: N", "Passed: N", "Skipped: N";
// Total leaves the skipped tests out) and the failed test.after hooks that test/support/uvu-hooks.ts
// reports, which uvu itself does not count.
export const AFTER_HOOK_FAILED = "FAIL test.after hook";

export interface UvuCounts {
  total: number;
  passed: number;
  skipped: number;
  afterHookFailures: number;
}

export function uvuCounts(output: string): UvuCounts {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const num = (label: string) => Number(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "m").exec(plain)?.[1] ?? 0);
  const afterHookFailures = plain.split("\n").filter((l) => l.trimStart().startsWith(AFTER_HOOK_FAILED)).length;
  return { total: num("Total"), passed: num("Passed"), skipped: num("Skipped"), afterHookFailures };
}
