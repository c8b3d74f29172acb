// Running iproute2: one `ip` command to its output, and the long-running `ip monitor`. Both settle only
// once their process has exited (its 'close'), so a caller that awaited them has no `ip` left running.
import { spawn } from "node:child_process";

export interface IpTarget {
  /** The iproute2 binary ("ip"). */
  ipCommand: string;
  /** A named network namespace: `ip -n NAME ...` runs there without this process entering it. */
  netns?: string;
}

/** More output than this from one command is a fault, not a node's addresses (~250 bytes each). */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
/** How much of stderr an error or an exit report keeps (its end: iproute2 ends with the reason). */
const STDERR_CHARS = 1000;

export function ipArgs(target: IpTarget, args: readonly string[]): string[] {
  return target.netns === undefined ? [...args] : ["-n", target.netns, ...args];
}

const commandLine = (target: IpTarget, args: readonly string[]) => [target.ipCommand, ...ipArgs(target, args)].join(" ");

/** A spawn failure in words: a missing binary is the usual one, and names its package. */
export function spawnFailure(target: IpTarget, err: NodeJS.ErrnoException): string {
  if (err.code === "ENOENT") {
    return target.ipCommand === "ip"
      ? `"ip" was not found on PATH: iproute2 is not installed (Debian: apt-get install iproute2)`
      : `${JSON.stringify(target.ipCommand)} was not found`;
  }
  return `${JSON.stringify(target.ipCommand)} could not be started: ${err.message}`;
}

/** Runs `ip ARGS` to its end; its stdout, or a rejection naming the command and what went wrong. */
export function runIp(target: IpTarget, args: readonly string[], opts: { timeoutMs: number; signal?: AbortSignal }): Promise<string> {
  const line = commandLine(target, args);
  if (opts.signal?.aborted) return Promise.reject(new Error(`${line}: stopped`));
  return new Promise((resolve, reject) => {
    const child = spawn(target.ipCommand, ipArgs(target, args), { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = "";
    let failure: string | undefined;
    let spawnError: NodeJS.ErrnoException | undefined;
    const kill = (why: string) => {
      failure ??= why;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => kill(`timed out after ${opts.timeoutMs} ms`), opts.timeoutMs);
    const onAbort = () => kill("stopped");
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (d: Buffer) => {
      outBytes += d.length;
      if (outBytes > MAX_OUTPUT_BYTES) kill(`printed more than ${MAX_OUTPUT_BYTES} bytes`);
      else out.push(d);
    });
    child.stderr.on("data", (d: Buffer) => { stderr = (stderr + d.toString("utf8")).slice(-STDERR_CHARS); });
    child.on("error", (err) => { spawnError = err; });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (spawnError) reject(new Error(spawnFailure(target, spawnError)));
      else if (failure !== undefined) reject(new Error(`${line}: ${failure}`));
      else if (code !== 0) reject(new Error(`${line} failed (${code !== null ? `exit code ${code}` : `signal ${signal}`})${stderr.trim() ? `: ${stderr.trim()}` : ""}`));
      else resolve(Buffer.concat(out).toString("utf8"));
    });
  });
}

export interface MonitorExit {
  /** Why it ended, in words ("exited with code 255: Cannot open network namespace ..."). */
  reason: string;
}

export interface MonitorProcess {
  /** undefined when it could not be started (then `exited` is already settling). */
  pid: number | undefined;
  /** Settles once the process is gone, however it ended. */
  exited: Promise<MonitorExit>;
  /** Ends it (SIGTERM, SIGKILL after a second) and waits until it is gone. */
  stop(): Promise<void>;
  /** SIGKILL now, for a process that is exiting (no waiting possible then). */
  killNow(): void;
}

/** The `ip monitor` whose every printed line is a change; `onOutput` is called per chunk, not parsed. */
export function spawnMonitor(target: IpTarget, objects: readonly string[], onOutput: () => void): MonitorProcess {
  const child = spawn(target.ipCommand, ipArgs(target, ["-oneline", "monitor", ...objects]), { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  let spawnError: NodeJS.ErrnoException | undefined;
  let gone = false;
  child.stdout.on("data", () => onOutput());
  child.stderr.on("data", (d: Buffer) => { stderr = (stderr + d.toString("utf8")).slice(-STDERR_CHARS); });
  child.on("error", (err) => { spawnError = err; });
  const exited = new Promise<MonitorExit>((resolve) => {
    child.on("close", (code, signal) => {
      gone = true;
      const how = spawnError ? spawnFailure(target, spawnError) : code !== null ? `exited with code ${code}` : `was ended by ${signal}`;
      resolve({ reason: `${how}${!spawnError && stderr.trim() ? `: ${stderr.trim()}` : ""}` });
    });
  });
  return {
    pid: child.pid,
    exited,
    async stop() {
      if (gone) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 1000);
      await exited;
      clearTimeout(timer);
    },
    killNow() {
      if (!gone) child.kill("SIGKILL");
    },
  };
}
