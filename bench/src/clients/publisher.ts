/**
 * What the bench's publishing loop needs from a target's publisher, whatever it speaks. A
 * publisher with acknowledgements (Sluice PUB/ACK, JetStream) bounds what it has in flight and
 * says when it can send again; the others can always send.
 */

export interface Publisher {
  /** True while one more message may be sent now. */
  canSend(): boolean;
  /** Sends one payload to topic `topicIndex`. */
  send(topicIndex: number, payload: Uint8Array): void;
  /** Called when `canSend()` may have become true again (acknowledgements arrived). */
  onReady: (() => void) | undefined;
  /** Writes between cork and uncork leave in as few syscalls as the wire allows. */
  cork(): void;
  uncork(): void;
  /** Resolves once the server handled (or acknowledged) everything sent so far. */
  settle(): Promise<void>;
  /** Messages acknowledged so far (acknowledging publishers), and failures. */
  readonly acked: number;
  readonly failures: number;
  /** The first failure, for the report. */
  readonly firstFailure: string;
  close(): void;
}
