// Cloudflare Worker (workerd): a consumer-group member over HTTP. On each request it mints a token
// that may consume `edge.>`, then leases, handles and acknowledges with createConsumer until it
// has handled `?expected=` messages (or 20 s passed), and answers what it handled. `./consumer.js`
// and `./token.js` are the SDK's browser bundles, as shipped.
import { createConsumer } from './consumer.js';
import { mintToken } from './token.js';

export default {
  async fetch(request, env) {
    try {
      const expected = Number(new URL(request.url).searchParams.get('expected'));
      const token = await mintToken({ key: env.PRIVATE_KEY, sub: 'edge-consumer', caps: { 'edge.>': ['consume'] }, ttl: 120 });
      const consumer = createConsumer({ url: env.GATEWAY, token, topic: env.TOPIC, group: 'edge-workers' });
      const handled = [];
      const stop = new AbortController();
      const deadline = setTimeout(() => stop.abort(), 20_000);
      await consumer.run(async (msg) => {
        handled.push({ offset: msg.offset, attempt: msg.attempt, data: msg.data });
        if (handled.length >= expected) stop.abort();
      }, { concurrency: 10, wait: 2, signal: stop.signal });
      clearTimeout(deadline);
      return Response.json({ handled, ackWaitMs: consumer.ackWaitMs });
    } catch (err) {
      return new Response(String(err && err.stack ? err.stack : err), { status: 500 });
    }
  },
};
