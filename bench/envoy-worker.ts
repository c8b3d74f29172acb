// What the guard benchmarks read about Envoy's one worker thread, and the statistics they print.
import { readdirSync, readFileSync } from "node:fs";

/** utime + stime of a process or thread (/proc/<pid>[/task/<tid>]/stat), in microseconds. */
export function cpuMicros(statPath: string): number {
  const fields = readFileSync(statPath, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100; // clock ticks are 1/100 s on Linux
}

/** The stat file of Envoy's worker thread (named wrk:worker_0): only it runs the filters. */
export function workerStat(pid: number): string {
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim().startsWith("wrk:")) return `/proc/${pid}/task/${tid}/stat`;
  }
  throw new Error("no Envoy worker thread found");
}

export const median = (xs: number[]) => { const s = [...xs].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
export const quantileUs = (sorted: bigint[], q: number) => Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!) / 1000;
export const sortNs = (xs: bigint[]) => xs.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));

/** `list` starting at element `round` (mod its length): rounds rotate which scenario goes first, so none always runs after the same one. */
export const rotated = <T>(list: readonly T[], round: number): T[] => list.map((_, i) => list[(i + round) % list.length]!);
