/**
 * The vocabulary of log fields (habit 10): a logged object may only use these names (the type
 * checker refuses any other), so one name means one thing in every component's logs. A new
 * field is added here first, with what it holds.
 */
export interface LogFields {
  /** The component that logged (set once by componentLogger). */
  component?: string | undefined;
  /** This node's name (`node ready`, lease and config lines). */
  node?: string | undefined;
  /** A peer node's name: every line about another node uses this, never `node`. */
  peer?: string | undefined;
  /** One CIDR, canonical text. */
  subnet?: string | undefined;
  /** Several CIDRs. */
  subnets?: readonly string[] | undefined;
  /** An endpoint as text: "host:port", "ws://host:port". */
  endpoint?: string | undefined;
  /** The address a host-name endpoint resolved to (or last did): "192.168.77.2". */
  address?: string | undefined;
  /** A node's endpoints by transport kind. */
  endpoints?: Readonly<Record<string, string>> | undefined;
  /** A transport kind ('udp', 'ws', 'selector'). */
  transport?: string | undefined;
  /** A transport switch: the kind left and the kind taken. */
  from?: string | undefined;
  to?: string | undefined;
  /** Why: a drop reason, a rejected config's message, a state change, a refusal. */
  reason?: string | undefined;
  rttMs?: number | undefined;
  /** An Error (pino's err serializer). */
  err?: unknown;
  /** The TUN interface name. */
  tun?: string | undefined;
  mtu?: number | undefined;
  /** What a listener is bound to: "host:port", or per transport kind. */
  listen?: string | Readonly<Record<string, string>> | undefined;
  /** Whether a listener serves TLS. */
  tls?: boolean | undefined;
  /** An HTTP proxy, credentials redacted. */
  proxy?: string | undefined;
  /** The far end of a connection, "host:port". */
  remote?: string | undefined;
  /** A file path (config, CNI files). */
  file?: string | undefined;
  /** A Unix socket path (the local API). */
  socket?: string | undefined;
  /** A URL served (the dashboard, the API over TCP). */
  url?: string | undefined;
  /** The node holding a subnet another one claims. */
  owner?: string | undefined;
  /** UDP offloads in use. */
  gso?: boolean | undefined;
  gro?: boolean | undefined;
  /** A signal name. */
  signal?: string | undefined;
  /** Host changes: a sysctl key, a command line. */
  sysctl?: string | undefined;
  command?: string | undefined;
  /** Counts: lease events, host changes, files installed, packets. */
  added?: number | undefined;
  removed?: number | undefined;
  count?: number | undefined;
  /** Drops by reason since the last drop line. */
  drops?: Readonly<Record<string, number>> | undefined;
  durationMs?: number | undefined;
  /** How long something has been silent or must be (liveness). */
  silentMs?: number | undefined;
  /** A retry's number and the wait before it. */
  attempt?: number | undefined;
  delayMs?: number | undefined;
  /** A WebSocket close code. */
  code?: number | undefined;
  /** An etcd or Kubernetes revision. */
  revision?: number | string | undefined;
  /** A registry key. */
  key?: string | undefined;
  /** A CNI directory or config name. */
  dir?: string | undefined;
  conf?: string | undefined;
  /** A log level being set. */
  level?: string | undefined;
  /** A node's public key, base64 (sealed tunnels). */
  publicKey?: string | undefined;
  /** Sealed session: the cipher in use. */
  cipher?: string | undefined;
  /** A packet's addresses (rate-limited debug drop lines: the last one dropped for the reason). */
  src?: string | undefined;
  dst?: string | undefined;
}
