// Time and randomness are injected so the same algorithm code runs in the daemon (real
// monotonic clock) and in the simulator (virtual time, seeded randomness).

export interface Clock {
  /** CLOCK_MONOTONIC in whole seconds, as sanlock writes into timestamps. */
  monotonicSeconds(): number;
  /** CLOCK_MONOTONIC in milliseconds, for deadlines and measurement. */
  monotonicMs(): number;
  /** Resolves after `ms`; rejects with the signal's reason if aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Uniform random in [0, 1): used only for sanlock's random ballot back-off. */
export interface Random {
  next(): number;
}
