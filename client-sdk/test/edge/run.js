// What an edge worker does, identical in every runtime: mint a token with the SDK (WebCrypto),
// then publish over HTTP with createPublisher — single publishes with keys, a retried key, and a
// batch with one key seen before. `./sluice.js` and `./token.js` are the SDK's browser bundles.
import { createPublisher } from './sluice.js';
import { mintToken } from './token.js';

export async function run({ gateway, topic, privateKey, runtime }) {
  const token = await mintToken({ key: privateKey, sub: `edge-${runtime}`, caps: { 'edge.>': ['pub'] }, ttl: 120 });
  const publisher = createPublisher({ url: gateway, token });
  const single = [];
  for (let i = 1; i <= 10; i++) {
    single.push(await publisher.publish(topic, { i, runtime }, { key: `${runtime}-${i}` }));
  }
  // A retry of message 4 (same key, same message) after its response was "lost": stored once. (The
  // same key with another message would be refused: idempotency-key-reused, protocol 1.4.)
  const retried = await publisher.publish(topic, { i: 4, runtime }, { key: `${runtime}-4` });
  const batch = await publisher.publishBatch([
    { topic, data: { i: 11, runtime }, key: `${runtime}-11` },
    { topic, data: { i: 12, runtime }, key: `${runtime}-12` },
    { topic, data: { i: 2, runtime }, key: `${runtime}-2` },
  ]);
  return { single, retried, batch };
}
