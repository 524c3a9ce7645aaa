// Runs a generated CloudFront Function under Node with a stub of the 'cloudfront' module.
//
//   node tests/edge_harness.mjs <function.js>   < {"cases": [{"uri": "/", "kvs": {"atomicsite:live": "…"}, "headers": {…}}]}
//
// Prints a JSON list, one entry per case: {uri, ok, result | error, reads}, where `reads` are the keys
// the function asked the store for. The function file is copied next to a node_modules/cloudfront
// stub in a temp dir, with `export { handler }` appended (CloudFront needs no export; Node does).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const STUB = `
// Stub of CloudFront's runtime 2.0 'cloudfront' module: kvs().get rejects for a missing key, as CloudFront does.
export default {
  kvs() {
    return {
      async get(key, options) {
        globalThis.__kvsReads.push(key);
        const store = globalThis.__kvs || {};
        if (!Object.prototype.hasOwnProperty.call(store, key)) {
          throw new Error('KeyNotFound: ' + key);
        }
        return store[key];
      },
    };
  },
};
`;

const code = readFileSync(process.argv[2], 'utf8');
const input = JSON.parse(readFileSync(0, 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'atomicsite-edge-'));
try {
  const mod = join(dir, 'node_modules', 'cloudfront');
  mkdirSync(mod, { recursive: true });
  writeFileSync(join(mod, 'package.json'), JSON.stringify({ name: 'cloudfront', type: 'module', main: 'index.js' }));
  writeFileSync(join(mod, 'index.js'), STUB);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  writeFileSync(join(dir, 'function.js'), code + '\nexport { handler };\n');
  const { handler } = await import(pathToFileURL(join(dir, 'function.js')).href);

  const results = [];
  for (const c of input.cases) {
    globalThis.__kvs = c.kvs;
    globalThis.__kvsReads = [];
    const event = {
      version: '1.0',
      context: { eventType: 'viewer-request' },
      viewer: { ip: '192.0.2.1' },
      request: { method: 'GET', uri: c.uri, querystring: { q: { value: '1' } }, headers: c.headers || {}, cookies: {} },
    };
    try {
      results.push({ uri: c.uri, ok: true, result: await handler(event), reads: globalThis.__kvsReads });
    } catch (err) {
      results.push({ uri: c.uri, ok: false, error: String(err), reads: globalThis.__kvsReads });
    }
  }
  process.stdout.write(JSON.stringify(results));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
