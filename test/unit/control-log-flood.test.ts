// A client that provokes a log line per request cannot flood the log: lines are counted per proxy
// (and per peer address for refused streams), echoed values are clipped, and what was held back is
// reported as one "N more log lines suppressed" line. A NACK's error_detail is also clipped where
// /debug/proxies keeps it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as grpc from "@grpc/grpc-js";
import { serve } from "../../control/serve/serve.ts";
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient, node } from "../support/ads-client.ts";
import { waitFor } from "../support/net.ts";

const NACKS = 2000;
const ID = "sidecar~10.0.0.1~noisy.default~default.svc.cluster.local";

test(`${NACKS} NACKs of 64 KiB, ${NACKS} forced pushes and 500 refused streams write a few KiB of log`, async () => {
  const lines: string[] = [];
  let bytes = 0;
  const cp = await serve({ xdsPort: 0, httpPort: false, loopGuard: false, logRate: { intervalMs: 60_000 }, log: (l) => { lines.push(l.slice(0, 5000)); bytes += l.length + 1; } });
  const client = adsClient(`127.0.0.1:${cp.xds.port}`);
  try {
    // NACK storm: every NACK names the response it answers, so each one counts.
    const call = client.StreamAggregatedResources();
    call.on("error", () => {});
    let nonce = "";
    let responses = 0;
    call.on("data", (res: any) => { nonce = res.nonce; responses++; });
    call.write({ node: node(ID, "10.0.0.1"), type_url: TYPE_URL.listener });
    assert.ok(await waitFor(() => nonce !== "", 5000), "first response");
    const before = bytes;
    const detail = "e".repeat(64 * 1024);
    for (let i = 0; i < NACKS; i++) call.write({ type_url: TYPE_URL.listener, response_nonce: nonce, error_detail: { code: 3, message: detail } });
    const nacked = () => Number(/^multiplane_xds_nacks_total\{type="lds"\} (\d+)$/m.exec(cp.view.metricsText())?.[1] ?? 0);
    assert.ok(await waitFor(() => nacked() === NACKS, 30_000), `NACKs counted: ${nacked()}`);
    const stored = cp.view.proxies()[0]!.types.lds!.errorDetail!;
    assert.ok(stored.length < 2100, `stored error_detail: ${stored.length} characters`);
    assert.match(stored, /… \[63488 more characters\]$/);
    const nackLines = lines.filter((l) => l.startsWith("NACK "));
    assert.ok(nackLines.length <= 20, `${nackLines.length} NACK lines`);
    assert.ok(nackLines.every((l) => l.length < 700), "each NACK line clipped");

    // Requests without a nonce must each be answered; each answer is a push, and pushes are counted too.
    const answered = responses;
    for (let i = 0; i < NACKS; i++) call.write({ type_url: TYPE_URL.listener });
    assert.ok(await waitFor(() => responses === answered + NACKS, 30_000), `forced pushes answered: ${responses - answered}`);

    // Refused streams are counted by peer address.
    await Promise.all(Array.from({ length: 500 }, () => new Promise<void>((resolve) => {
      const bad = client.StreamAggregatedResources();
      bad.on("error", (e: grpc.ServiceError) => { assert.is(e.code, grpc.status.INVALID_ARGUMENT); resolve(); });
      bad.write({ node: { id: "x".repeat(100_000) }, type_url: TYPE_URL.listener });
    })));
    assert.ok(bytes - before < 32 * 1024, `logged ${bytes - before} bytes`);
    assert.is(lines.filter((l) => l.startsWith("refused ")).length, 20);

    // The control plane still serves a well-behaved proxy.
    const healthy = client.StreamAggregatedResources();
    healthy.on("error", () => {});
    const got = new Promise<any>((resolve) => healthy.on("data", resolve));
    healthy.write({ node: node("sidecar~10.0.0.2~ok.default~default.svc.cluster.local", "10.0.0.2"), type_url: TYPE_URL.listener });
    assert.ok((await got).resources.length > 0);
    healthy.cancel();
    call.cancel();
  } finally {
    client.close();
    await cp.stop();
  }
  // Every suppressed line was accounted for when the control plane stopped.
  const suppressed = (source: string) => lines.filter((l) => l.startsWith(`${source}: `)).map((l) => Number(/: (\d+) more log lines suppressed/.exec(l)![1]));
  const fromProxy = suppressed(`proxy=${ID}`);
  assert.is(fromProxy.length, 1, lines.filter((l) => l.includes("suppressed")).join("\n"));
  const loggedFromProxy = lines.filter((l) => l.includes(`proxy=${ID} `) && !l.startsWith("refused") && !l.includes("suppressed")).length;
  // connect, first push, NACKs, forced pushes, disconnect: each either written or counted.
  assert.is(loggedFromProxy + fromProxy[0]!, 1 + 1 + NACKS + NACKS + 1);
  assert.equal(suppressed("peer=127.0.0.1"), [480]);
});

test("a delta ACK counts under the type of the response it names, so clients cannot invent metric labels", async () => {
  const cp = await serve({ xdsPort: 0, httpPort: false, loopGuard: false, log: () => {} });
  const client = adsClient(`127.0.0.1:${cp.xds.port}`);
  try {
    const call = client.DeltaAggregatedResources();
    call.on("error", () => {});
    const first = new Promise<any>((resolve) => call.once("data", resolve));
    call.write({ node: node(ID), type_url: TYPE_URL.listener });
    const { nonce } = await first;
    call.write({ type_url: "type.googleapis.com/invented.Type", response_nonce: nonce });
    assert.ok(await waitFor(() => /^multiplane_xds_acks_total\{type="lds"\} 1$/m.test(cp.view.metricsText()), 5000), cp.view.metricsText());
    assert.not.match(cp.view.metricsText(), /invented/);
    call.cancel();
  } finally {
    client.close();
    await cp.stop();
  }
});

test.run();
