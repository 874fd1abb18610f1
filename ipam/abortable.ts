/**
 * Waiting that an AbortSignal ends at once: the pause between retries, and a call whose answer
 * is no longer wanted once the signal aborts (a registry or API call runs on; its late answer is
 * dropped). Neither leaves a timer or a listener behind.
 */
import { setTimeout as delay } from 'node:timers/promises';

/** What `abortable` rejects with when the signal aborts first; callers test the signal, not this. */
class Aborted extends Error {
  readonly code = 'ERR_PODTUN_ABORTED';
}

/** Waits `ms`, or less when `signal` aborts; never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}

/** Settles as `work` does, or rejects as soon as `signal` aborts (a later rejection of `work` is handled). */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new Aborted('aborted'));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Aborted('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
