// A stand-in for CloudFront in front of an S3 REST origin, for crawling: runs a generated CloudFront
// Function per request under Node and serves what it asks for from a directory laid out like the bucket.
//
//   node tests/edge_server.mjs <function.js> <bucket dir> <kvs.json>
//
// Prints "listening <port>" once ready on 127.0.0.1. Per request: the viewer-request function gets the
// event CloudFront would give it; a response it returns is sent as is; a request it returns is read
// from <bucket dir>/<decoded uri> (S3 keys are the decoded path) and answered 200, or 403 as S3 does
// for a missing key when the origin access identity may not list the bucket.
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [fnPath, bucket, kvsPath] = process.argv.slice(2);
globalThis.__kvs = JSON.parse(readFileSync(kvsPath, 'utf8'));
globalThis.__kvsReads = [];

const STUB = `export default { kvs() { return { async get(key) {
  if (!Object.prototype.hasOwnProperty.call(globalThis.__kvs, key)) { throw new Error('KeyNotFound: ' + key); }
  return globalThis.__kvs[key]; } }; } };`;
const dir = mkdtempSync(join(tmpdir(), 'atomicsite-edge-server-'));
const mod = join(dir, 'node_modules', 'cloudfront');
mkdirSync(mod, { recursive: true });
writeFileSync(join(mod, 'package.json'), JSON.stringify({ name: 'cloudfront', type: 'module', main: 'index.js' }));
writeFileSync(join(mod, 'index.js'), STUB);
writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
writeFileSync(join(dir, 'function.js'), readFileSync(fnPath, 'utf8') + '\nexport { handler };\n');
const { handler } = await import(pathToFileURL(join(dir, 'function.js')).href);
rmSync(dir, { recursive: true, force: true });

const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript',
                '.xml': 'application/xml', '.json': 'application/json', '.png': 'image/png', '.svg': 'image/svg+xml' };

function querystring(search) {
  const qs = {};
  for (const [k, v] of new URLSearchParams(search)) {
    qs[k] = { value: encodeURIComponent(v) };
  }
  return qs;
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://edge');
  const event = { version: '1.0', context: { eventType: 'viewer-request' },
                  request: { method: req.method, uri: url.pathname, querystring: querystring(url.search),
                             headers: {}, cookies: {} } };
  let out;
  try {
    out = await handler(event);
  } catch (err) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('function error: ' + err);
    return;
  }
  if (out.statusCode) {
    const headers = {};
    for (const name in (out.headers || {})) {
      headers[name] = out.headers[name].value;
    }
    res.writeHead(out.statusCode, headers);
    res.end(out.body ? out.body.data : '');
    return;
  }
  const key = decodeURIComponent(out.uri).replace(/^\/+/, '');
  const file = join(bucket, key);
  let ok = false;
  try {
    ok = statSync(file).isFile();
  } catch (err) {
    ok = false;
  }
  if (!ok) {
    res.writeHead(403, { 'content-type': 'application/xml' });
    res.end('<Error><Code>AccessDenied</Code></Error>');
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream',
                       'x-origin-key': encodeURI(key) });
  res.end(readFileSync(file));
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write('listening ' + server.address().port + '\n');
});
