/** A control-plane failure of a transport (bad option, cannot listen, closed); `code` is stable. */
export class TransportError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'TransportError';
  }
}

/**
 * Option checks shared by the transports and the selector: a missing value takes the default,
 * a bad one throws TransportError(`code`) naming the option.
 */
export function positiveOption(value: number | undefined, fallback: number, name: string, code: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TransportError(code, `${name} must be a positive number, got ${value}`);
  return value;
}

export function nonNegativeOption(value: number | undefined, fallback: number, name: string, code: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) throw new TransportError(code, `${name} must be a number >= 0, got ${value}`);
  return value;
}
