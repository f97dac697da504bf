// Deno: runs the shared edge routine once and prints its result as JSON.
import { run } from './run.js';

const [gateway, topic, privateKey] = Deno.args;
console.log(JSON.stringify(await run({ gateway, topic, privateKey, runtime: 'deno' })));
