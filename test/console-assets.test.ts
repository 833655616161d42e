// The console's files over HTTP (app.inject): the page with a CSP that allows its import map and
// nothing inline besides, the UI library's modules from the installed packages, revalidation by
// ETag, and nothing but the known files (no path reaches the disk).
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_DIR } from '../src/api/console/assets.js';
import { startApi, type ApiHarness } from './helpers/api.js';

let h: ApiHarness;
beforeAll(async () => {
  h = await startApi();
});
afterAll(async () => {
  await h.close();
});

const get = (url: string, headers: Record<string, string> = {}) => h.app.inject({ method: 'GET', url, headers });

describe('/ui', () => {
  it('sends /ui to /ui/, where the page is, with a CSP that allows exactly its import map', async () => {
    const redirect = await get('/ui');
    expect(redirect.statusCode).toBe(302);
    expect(redirect.headers.location).toBe('ui/');
    const page = await get('/ui/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const map = /<script type="importmap">([\s\S]*?)<\/script>/.exec(page.body)![1]!;
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain(`script-src 'self' 'sha256-${createHash('sha256').update(map).digest('base64')}'`);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    // Everything the import map names is served.
    for (const url of Object.values(JSON.parse(map).imports as Record<string, string>)) {
      const res = await get(`/ui/${url.replace('./', '')}`);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toBe('text/javascript; charset=utf-8');
      expect(res.body.length, url).toBeGreaterThan(500);
    }
  });

  it('serves every file of the public folder without a token, and revalidates by ETag', async () => {
    for (const name of readdirSync(PUBLIC_DIR)) {
      const res = await get(`/ui/${name}`);
      expect(res.statusCode, name).toBe(200);
      expect(res.headers['cache-control'], name).toBe('no-cache');
      const again = await get(`/ui/${name}`, { 'if-none-match': String(res.headers.etag) });
      expect(again.statusCode, name).toBe(304);
      expect(again.body, name).toBe('');
    }
  });

  it('answers 404 for anything else, a path that climbs out of the folder included', async () => {
    for (const url of ['/ui/nope.js', '/ui/..%2Fassets.ts', '/ui/vendor/..%2F..%2Fpackage.json', '/ui/vendor/preact', '/ui/%2e%2e/plugin.ts', '/ui/a/b/c']) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error, url).toBe('not_found');
    }
  });
});
