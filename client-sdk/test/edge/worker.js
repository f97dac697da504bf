// Cloudflare Worker (workerd): runs the shared edge routine on each request.
import { run } from './run.js';

export default {
  async fetch(_request, env) {
    try {
      return Response.json(await run({ gateway: env.GATEWAY, topic: env.TOPIC, privateKey: env.PRIVATE_KEY, runtime: 'workerd' }));
    } catch (err) {
      return new Response(String(err && err.stack ? err.stack : err), { status: 500 });
    }
  },
};
