// `npm test`: runs every test/**/*.test.ts with uvu (TypeScript through tsx) and ends with
// the line CI reads: "N passed, N failed". Optional argument: a filename pattern.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { PROJECT_ROOT } from "../envoy/paths.ts";

const pattern = process.argv[2] ?? "\\.test\\.ts$";
const uvu = join(PROJECT_ROOT, "node_modules", "uvu", "bin.js");
const child = spawn(process.execPath, ["--import", "tsx", uvu, "test", pattern, "-i", "support"], {
  cwd: PROJECT_ROOT,
  stdio: ["ignore", "pipe", "inherit"],
});
let out = "";
child.stdout.on("data", (d: Buffer) => {
  out += d.toString();
  process.stdout.write(d);
});
child.on("exit", (code, signal) => {
  // uvu's summary: "Total: N", "Passed: N", "Skipped: N" (ANSI colours stripped).
  const plain = out.replace(/\x1b\[[0-9;]*m/g, "");
  const num = (label: string) => Number(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "m").exec(plain)?.[1] ?? 0);
  const total = num("Total");
  const passed = num("Passed");
  const skipped = num("Skipped");
  let failed = total - passed; // uvu's Total does not include skipped tests
  if ((code !== 0 || signal) && failed === 0) failed = 1; // crashed before or while reporting
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
  process.exit(failed > 0 ? 1 : 0);
});
