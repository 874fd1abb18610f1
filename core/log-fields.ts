/**
 * The vocabulary of log fields (habit 10): a logged object may only use these names (the type
 * checker refuses any other), so one name means one thing in every component's logs. A new
 * field is added here first, with what it holds.
 */
export interface LogFields {
  /** The component that logged (set once by componentLogger). */
  component?: string;
  /** This node's name (`node ready`, lease and config lines). */
  node?: string;
  /** A peer node's name: every line about another node uses this, never `node`. */
  peer?: string;
  /** One CIDR, canonical text. */
  subnet?: string;
  /** Several CIDRs. */
  subnets?: readonly string[];
  /** An endpoint as text: "host:port", "ws://host:port". */
  endpoint?: string;
  /** A node's endpoints by transport kind. */
  endpoints?: Readonly<Record<string, string>>;
  /** A transport kind ('udp', 'ws', 'selector'). */
  transport?: string;
  /** A transport switch: the kind left and the kind taken. */
  from?: string;
  to?: string;
  /** Why: a drop reason, a rejected config's message, a state change, a refusal. */
  reason?: string;
  rttMs?: number;
  /** An Error (pino's err serializer). */
  err?: unknown;
  /** The TUN interface name. */
  tun?: string;
  mtu?: number;
  /** What a listener is bound to: "host:port", or per transport kind. */
  listen?: string | Readonly<Record<string, string>>;
  /** Whether a listener serves TLS. */
  tls?: boolean;
  /** An HTTP proxy, credentials redacted. */
  proxy?: string;
  /** The far end of a connection, "host:port". */
  remote?: string;
  /** A file path (config, CNI files). */
  file?: string;
  /** A Unix socket path (the local API). */
  socket?: string;
  /** A URL served (the dashboard, the API over TCP). */
  url?: string;
  /** The node holding a subnet another one claims. */
  owner?: string;
  /** UDP offloads in use. */
  gso?: boolean;
  gro?: boolean;
  /** A signal name. */
  signal?: string;
  /** Host changes: a sysctl key, a command line. */
  sysctl?: string;
  command?: string;
  /** Counts: lease events, host changes, files installed, packets. */
  added?: number;
  removed?: number;
  count?: number;
  /** Drops by reason since the last drop line. */
  drops?: Readonly<Record<string, number>>;
  durationMs?: number;
  /** A retry's number and the wait before it. */
  attempt?: number;
  delayMs?: number;
  /** A WebSocket close code. */
  code?: number;
  /** An etcd or Kubernetes revision. */
  revision?: number | string;
  /** A registry key. */
  key?: string;
  /** A CNI directory or config name. */
  dir?: string;
  conf?: string;
  /** A log level being set. */
  level?: string;
  /** A packet's addresses (rate-limited debug drop lines). */
  src?: string;
  dst?: string;
}
