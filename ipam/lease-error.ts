/** A lease could not be acquired or was given up; the message says in which CIDR and why. */
export class LeaseError extends Error {
  readonly code = 'ERR_PODTUN_LEASE';
}
