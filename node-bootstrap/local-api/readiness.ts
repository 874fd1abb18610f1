/** Whether the node forwards yet, as /readyz and /cni answer it. */

/** The steps a node goes through before it forwards; /readyz reports the first one missing. */
export interface ReadinessChecks {
  /** The TUN device is open and configured (addresses, MTU, routes to it). */
  tun: boolean;
  /** The router started: both transports bound and reading. */
  transports: boolean;
  /** The first lease batch (every node in the config) went into the route table. */
  routes: boolean;
  /** This node holds at least one subnet. */
  lease: boolean;
}

export const READINESS_ORDER = ['tun', 'transports', 'routes', 'lease'] as const satisfies readonly (keyof ReadinessChecks)[];

/** Mutable readiness: run-node flips the checks as it goes; `stopping` wins over everything. */
export class Readiness {
  readonly checks: ReadinessChecks = { tun: false, transports: false, routes: false, lease: false };
  stopping = false;
  /** What the start is waiting for before any step can be taken (the subnet manager's own words). */
  waitingFor: () => string | undefined = () => undefined;

  /** undefined when ready; else why not, e.g. "transports not up", "podCIDR not assigned". */
  reason(): string | undefined {
    if (this.stopping) return 'shutting down';
    const waiting = this.waitingFor();
    if (waiting !== undefined) return waiting;
    const missing = READINESS_ORDER.find((k) => !this.checks[k]);
    return missing === undefined ? undefined : `${missing} not up`;
  }
}
