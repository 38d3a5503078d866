// How fast the containers page loads, against any daemon: `node e2e/load.mjs URL [ROUNDS]`
// with a login URL from `berth dashboard`. Logs in, then reloads the page ROUNDS times (10 by
// default) and prints, per reload and as medians, the milliseconds from the navigation's
// start to the list's answer (`fetched`) and to every row on screen (`listed`). The browser
// test (crates/cli/tests/dashboard.rs) reports the same figures for its debug build;
// docs/dashboard.md gives a release build's.

import { chromium } from 'playwright-core';

const [url, rounds = '10'] = process.argv.slice(2);
if (!url) {
  console.error('usage: node e2e/load.mjs LOGIN_URL [ROUNDS]');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  await page.goto(url);
  const measure = async () => {
    await page.waitForFunction(() => performance.getEntriesByName('berth:containers-listed').length > 0, null, { timeout: 60000 });
    return page.evaluate(() => {
      const at = (n) => performance.getEntriesByName(n)[0].startTime;
      return { fetched: at('berth:containers-fetched'), listed: at('berth:containers-listed'), rows: document.querySelectorAll('table.containers tbody tr').length };
    });
  };
  const first = await measure();
  const all = [];
  for (let i = 0; i < Number(rounds); i++) {
    await page.reload();
    all.push(await measure());
  }
  const median = (k) => {
    const v = all.map((r) => r[k]).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)];
  };
  console.log(JSON.stringify({ rows: first.rows, first, reloads: all.map((r) => [Math.round(r.fetched), Math.round(r.listed)]), median_fetched_ms: Math.round(median('fetched')), median_listed_ms: Math.round(median('listed')) }));
} finally {
  await browser.close();
}
