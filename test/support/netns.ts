// The seed's network-namespace topology for tests. It lives in control/demo/ because `multiplane demo`
// (the bundle) builds the same topology; tests import it from here.
export { createSeedTopology, netnsUnavailableReason, openFds, sweepStaleNamespaces, SEED, type SpawnedProcess, type Topology } from "../../control/cmd/demo/netns.ts";
