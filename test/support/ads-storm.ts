// Child process for tests: N proxies connect at once (SotW or delta, over 8 channels), each with its
// own node IPs, and print "served" once every one has its listeners. Stays connected until killed.
//   node --import tsx test/support/ads-storm.ts HOST:PORT N [sotw|delta]
import { TYPE_URL } from "../../control/xds/cache/protos.ts";
import { adsClient, node } from "./ads-client.ts";

const [address, countText, protocol = "sotw"] = process.argv.slice(2) as [string, string, string?];
const count = Number(countText);
const clients = Array.from({ length: 8 }, () => adsClient(address));
let served = 0;
for (let i = 0; i < count; i++) {
  const client = clients[i % clients.length]!;
  const call = protocol === "delta" ? client.DeltaAggregatedResources() : client.StreamAggregatedResources();
  call.on("error", (e: Error) => { process.stderr.write(`storm stream ${i}: ${e.message}\n`); process.exit(1); });
  let counted = false;
  call.on("data", (res: any) => {
    call.write({ type_url: res.type_url, response_nonce: res.nonce, ...(protocol === "delta" ? {} : { version_info: res.version_info }) });
    if (!counted && res.type_url === TYPE_URL.listener) {
      counted = true;
      if (++served === count) console.log("served");
    }
  });
  call.write({ node: node(`storm-${i}`, `10.200.${i >> 8}.${i & 255}`), type_url: TYPE_URL.listener });
  call.write({ type_url: TYPE_URL.cluster });
}
