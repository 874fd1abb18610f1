/**
 * CNI errors with the spec's numeric codes. Codes 0-99 are the spec's well-known errors (CNI
 * spec 1.1, "Error"); 100 and up are plugin-specific. A CniError is what a plugin prints on
 * stdout as `{cniVersion, code, msg, details}` before exiting 1 (see cni-protocol.ts).
 */

export const CniCode = {
  /** The config's cniVersion is not one the plugin supports. */
  IncompatibleVersion: 1,
  /** A field of the network config the plugin does not support; the message names key and value. */
  UnsupportedField: 2,
  /** The container is unknown or does not exist. */
  UnknownContainer: 3,
  /** A required CNI_* environment variable is missing or invalid. */
  InvalidEnv: 4,
  /** An I/O failure (reading stdin, the state directory...). */
  IoFailure: 5,
  /** stdin could not be decoded (not JSON, not an object, too big). */
  DecodeFailure: 6,
  /** The network config is invalid (a bad subnet, a missing name...). */
  InvalidConfig: 7,
  /** A transient condition (the podtun daemon not ready yet); the runtime may retry. */
  TryAgainLater: 11,
  /** STATUS: the plugin cannot serve ADD now. */
  NotAvailable: 50,
  /** STATUS: the plugin cannot serve ADD, and existing containers may have limited connectivity. */
  LimitedConnectivity: 51,
  /** podtun-ipam: every address of a range set is taken. */
  RangeExhausted: 100,
} as const;

export type CniCodeValue = (typeof CniCode)[keyof typeof CniCode];

/** A failure to report to the runtime with a CNI error code; `cause` keeps the underlying error. */
export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, details?: string, options?: { cause?: unknown }) {
    super(msg, options);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }
}
